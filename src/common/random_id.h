// Random object ids: 64 hex digits from /dev/urandom, like containerd's.
#pragma once

#include <string>
#include <string_view>

namespace berth {

std::string newObjectId();

// Whether `s` has the shape of an object id (and of a sha256 hex digest): 64 lowercase hex
// digits.
bool isObjectId(std::string_view s);

}  // namespace berth
