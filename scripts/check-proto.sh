#!/usr/bin/env bash
# Checks berth's CRI proto (proto/runtime/v1/api.proto):
#   1. it compiles with protoc (C++ messages + gRPC C++ stubs), and
#   2. it defines exactly 41 RPCs: 35 in RuntimeService and 6 in ImageService.
# Exits non-zero on any failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
proto_root="${repo_root}/proto"
proto_file="${proto_root}/runtime/v1/api.proto"

expected_runtime=35
expected_image=6
expected_total=$((expected_runtime + expected_image))

fail() { echo "check-proto: FAIL: $*" >&2; exit 1; }

[[ -f "${proto_file}" ]] || fail "missing ${proto_file}"
command -v protoc >/dev/null 2>&1 || fail "protoc not found in PATH"

grpc_plugin="${GRPC_CPP_PLUGIN:-$(command -v grpc_cpp_plugin || true)}"
[[ -n "${grpc_plugin}" && -x "${grpc_plugin}" ]] || fail "grpc_cpp_plugin not found (set GRPC_CPP_PLUGIN)"

out_dir="$(mktemp -d)"
trap 'rm -rf "${out_dir}"' EXIT

# 1. Compile.
if ! protoc -I"${proto_root}" \
        --cpp_out="${out_dir}" \
        --grpc_out="${out_dir}" \
        --plugin=protoc-gen-grpc="${grpc_plugin}" \
        "${proto_file}"; then
    fail "protoc failed to compile ${proto_file}"
fi
for f in api.pb.h api.pb.cc api.grpc.pb.h api.grpc.pb.cc; do
    [[ -s "${out_dir}/runtime/v1/${f}" ]] || fail "protoc did not produce runtime/v1/${f}"
done

# 2. Count RPCs per service (comments stripped; tracks brace depth per service).
count_rpcs() {
    local service="$1"
    sed -e 's://.*$::' "${proto_file}" | awk -v svc="${service}" '
        BEGIN { inside = 0; depth = 0; n = 0 }
        {
            line = $0
            if (!inside && line ~ "^[[:space:]]*service[[:space:]]+" svc "[[:space:]]*\\{") {
                inside = 1; depth = 0
            }
            if (inside) {
                if (line ~ /^[[:space:]]*rpc[[:space:]]/) n++
                o = gsub(/\{/, "{", line); c = gsub(/\}/, "}", line)
                depth += o - c
                if (depth <= 0) inside = 0
            }
        }
        END { print n }'
}

runtime_count="$(count_rpcs RuntimeService)"
image_count="$(count_rpcs ImageService)"
total_count="$(sed -e 's://.*$::' "${proto_file}" | grep -cE '^[[:space:]]*rpc[[:space:]]' || true)"

echo "check-proto: RuntimeService=${runtime_count} ImageService=${image_count} total=${total_count}"

[[ "${runtime_count}" -eq "${expected_runtime}" ]] || fail "RuntimeService has ${runtime_count} rpcs, expected ${expected_runtime}"
[[ "${image_count}" -eq "${expected_image}" ]] || fail "ImageService has ${image_count} rpcs, expected ${expected_image}"
[[ "${total_count}" -eq "${expected_total}" ]] || fail "file has ${total_count} rpcs, expected ${expected_total}"

echo "check-proto: OK"
