// mamba-build toolchain probe: the device half.
//
// Uses the same ingredients as the Mamba kernels (selective_scan_cuda, causal_conv1d_cuda):
//   * kernels templated over the element type, dispatched over fp32/fp16/bf16 (and fp64)
//   * a cub::BlockScan (the selective scan is built on one)
//   * launch on torch's current CUDA stream, under a device guard
//   * at::acc_type for the accumulator, c10::Half / c10::BFloat16 conversions in device code
// It computes an inclusive prefix sum along the last dimension: out[..., i] = sum_{j<=i} x[..., j],
// which the caller compares with torch.cumsum.  Kept to one small kernel so it compiles fast.

#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/AccumulateType.h>
#include <ATen/ops/empty_like.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/Exception.h>

#include <cub/block/block_scan.cuh>

#include <string>
#include <vector>

#define PROBE_STR_(x) #x
#define PROBE_STR(x) PROBE_STR_(x)

namespace mamba_build_probe {

// Carries the running total of the previous chunks of a row into the next BlockScan.
template <typename acc_t>
struct RunningPrefix {
  acc_t total;
  __device__ explicit RunningPrefix(acc_t start) : total(start) {}
  __device__ acc_t operator()(acc_t block_aggregate) {
    acc_t old = total;
    total += block_aggregate;
    return old;
  }
};

// One block per row; each thread owns kItems consecutive elements of a chunk of
// kThreads * kItems elements (a "blocked" arrangement, as in the Mamba kernels).
template <typename scalar_t, int kThreads, int kItems>
__global__ void __launch_bounds__(kThreads)
inclusive_scan_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out, int64_t rows, int64_t len) {
  using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
  using BlockScanT = cub::BlockScan<acc_t, kThreads>;
  __shared__ typename BlockScanT::TempStorage temp;

  const int64_t row = blockIdx.x;
  if (row >= rows) return;
  const scalar_t* in_row = x + row * len;
  scalar_t* out_row = out + row * len;

  RunningPrefix<acc_t> prefix(acc_t(0));
  constexpr int kChunk = kThreads * kItems;
  for (int64_t base = 0; base < len; base += kChunk) {
    acc_t items[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int64_t idx = base + int64_t(threadIdx.x) * kItems + i;
      items[i] = idx < len ? static_cast<acc_t>(in_row[idx]) : acc_t(0);
    }
    BlockScanT(temp).InclusiveSum(items, items, prefix);
    __syncthreads();  // temp storage is reused by the next chunk
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int64_t idx = base + int64_t(threadIdx.x) * kItems + i;
      if (idx < len) out_row[idx] = static_cast<scalar_t>(items[i]);
    }
  }
}

__global__ void device_arch_kernel(int* out) {
#ifdef __CUDA_ARCH__
  *out = __CUDA_ARCH__;
#else
  *out = -1;
#endif
}

at::Tensor inclusive_scan_cuda(const at::Tensor& x) {
  TORCH_CHECK(x.is_cuda(), "probe: x must be a CUDA tensor");
  TORCH_CHECK(x.dim() >= 1, "probe: x must have at least one dimension");
  const at::cuda::CUDAGuard device_guard(x.device());
  at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty_like(xc);
  const int64_t len = xc.size(-1);
  const int64_t rows = len == 0 ? 0 : xc.numel() / len;
  if (rows == 0) return out;
  TORCH_CHECK(rows <= int64_t(0x7fffffff), "probe: too many rows");

  constexpr int kThreads = 128;
  constexpr int kItems = 4;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, xc.scalar_type(),
                                  "mamba_build_probe_inclusive_scan", [&] {
    inclusive_scan_kernel<scalar_t, kThreads, kItems><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        xc.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), rows, len);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

int device_arch() {
  int* d_out = nullptr;
  C10_CUDA_CHECK(cudaMalloc(&d_out, sizeof(int)));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  device_arch_kernel<<<1, 1, 0, stream>>>(d_out);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  int h_out = 0;
  C10_CUDA_CHECK(cudaMemcpyAsync(&h_out, d_out, sizeof(int), cudaMemcpyDeviceToHost, stream));
  C10_CUDA_CHECK(cudaStreamSynchronize(stream));
  C10_CUDA_CHECK(cudaFree(d_out));
  return h_out;
}

// Facts fixed when nvcc compiled this file (host pass).
std::vector<std::pair<std::string, std::string>> nvcc_info() {
  std::vector<std::pair<std::string, std::string>> info;
#if defined(__CUDACC_VER_MAJOR__)
  info.emplace_back("cuda_version", std::to_string(__CUDACC_VER_MAJOR__) + "." +
                                        std::to_string(__CUDACC_VER_MINOR__) + "." +
                                        std::to_string(__CUDACC_VER_BUILD__));
#endif
#if defined(__CUDA_ARCH_LIST__)
  info.emplace_back("cuda_arch_list", PROBE_STR(__CUDA_ARCH_LIST__));
#endif
#if defined(__GNUC__)
  info.emplace_back("nvcc_host_compiler", "gcc " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__));
#endif
#if defined(_GLIBCXX_USE_CXX11_ABI)
  info.emplace_back("cu_glibcxx_use_cxx11_abi", std::to_string(_GLIBCXX_USE_CXX11_ABI));
#endif
  return info;
}

}  // namespace mamba_build_probe
