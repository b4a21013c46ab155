# Sourced by the device scripts: point FRAMEPACK_CUDNN at libcudnn.so.9 (conv3d's optional fast path, loaded with
# dlopen) and CUDNN_INCLUDE at its headers, from PyTorch's pip wheel, the ld cache, or a search.
if [ -z "${FRAMEPACK_CUDNN:-}" ]; then
  lib=$(python3 -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib", "libcudnn.so.9"))' 2>/dev/null)
  [ -f "$lib" ] || lib=$(ldconfig -p 2>/dev/null | awk '/libcudnn.so.9 /{print $NF; exit}')
  [ -f "$lib" ] || lib=$(find / -name 'libcudnn.so.9' -not -path '/proc/*' 2>/dev/null | head -1)
  [ -f "$lib" ] && export FRAMEPACK_CUDNN=$lib
fi
CUDNN_INCLUDE=$(dirname "$(dirname "${FRAMEPACK_CUDNN:-/x/x}")")/include
[ -f "$CUDNN_INCLUDE/cudnn.h" ] || CUDNN_INCLUDE=$(dirname "$(find / -name cudnn.h -not -path '/proc/*' 2>/dev/null | head -1)")
export CUDNN_INCLUDE
echo "FRAMEPACK_CUDNN=${FRAMEPACK_CUDNN:-<none found: conv3d uses im2col + cuBLASLt>}"
