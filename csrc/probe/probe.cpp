// mamba-build toolchain probe: the host half and the Python binding (TORCH_EXTENSION_NAME).
//
// Compiled by the host compiler (CXX), like the Mamba bindings.  It includes torch's pybind11
// header (pybind11 + Python.h + torch's Tensor casters) rather than the all-in-one
// <torch/extension.h> or <torch/python.h> (which pulls in torch::nn): same binding machinery, about a
// third of extension.h's compile time (57 % of python.h's), and compile time is what the probe is for.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>  // like the Mamba bindings: the host unit needs the CUDA runtime headers too
#include <torch/csrc/utils/pybind.h>
#include <torch/version.h>

#include <string>
#include <utility>
#include <vector>

namespace mamba_build_probe {
at::Tensor inclusive_scan_cuda(const at::Tensor& x);
int device_arch();
std::vector<std::pair<std::string, std::string>> nvcc_info();
}  // namespace mamba_build_probe

namespace {

// Inclusive prefix sum along the last dimension (compare with torch.cumsum(x, -1)).
at::Tensor inclusive_scan(const at::Tensor& x) {
  // as causal_conv1d.cpp guards x's device (a CPU tensor is refused by the kernel's own check)
  c10::cuda::OptionalCUDAGuard device_guard;
  if (x.is_cuda()) device_guard.set_device(x.device());
  return mamba_build_probe::inclusive_scan_cuda(x);
}

// Compile-time facts: nvcc version and arch list (from the .cu), host compiler and C++ ABI of
// this translation unit (compiled by the host compiler, like the Mamba bindings).
pybind11::dict probe_info() {
  pybind11::dict info;
  for (const auto& kv : mamba_build_probe::nvcc_info()) {
    info[pybind11::str(kv.first)] = kv.second;
  }
#if defined(_GLIBCXX_USE_CXX11_ABI)
  info["glibcxx_use_cxx11_abi"] = static_cast<int>(_GLIBCXX_USE_CXX11_ABI);
#endif
#if defined(__GNUC__) && !defined(__clang__)
  info["cxx_compiler"] = "gcc " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) +
                         "." + std::to_string(__GNUC_PATCHLEVEL__);
#elif defined(__clang__)
  info["cxx_compiler"] = "clang " + std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__);
#endif
  info["cplusplus"] = static_cast<long>(__cplusplus);
#if defined(TORCH_VERSION)
  info["torch_version"] = TORCH_VERSION;
#endif
  return info;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mamba-build toolchain probe (cub::BlockScan inclusive prefix sum)";
  m.def("inclusive_scan", &inclusive_scan, "Inclusive prefix sum along the last dim (CUDA tensors)",
        pybind11::arg("x"));
  m.def("device_arch", &mamba_build_probe::device_arch,
        "__CUDA_ARCH__ of the kernel image that runs on the current device");
  m.def("probe_info", &probe_info, "Compile-time facts of this build");
}
