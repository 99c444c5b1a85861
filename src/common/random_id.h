// Random object ids: 64 hex digits from /dev/urandom, like containerd's.
#pragma once

#include <string>

namespace berth {

std::string newObjectId();

}  // namespace berth
