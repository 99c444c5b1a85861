// What a berthd left on the host, counted the way an operator would: shims, processes in its
// pods' cgroups, cgroups under its cgroup parent, pinned network and user namespaces, veths on its
// bridge, IP leases, mounts under its dirs, runc state entries, pod and container dirs.
#pragma once

#include <string>
#include <vector>

#include "berthd_fixture.h"

namespace berth::testing {

// One line per leftover ("netns /…/state/netns/ab12…"); empty when nothing is left.
std::vector<std::string> leftovers(const Berthd& d);

}  // namespace berth::testing
