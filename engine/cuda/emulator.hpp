#pragma once
//! The CUDA backend's forward pass computed on the CPU from the kernel oracles (reference.hpp) and the same step plan
//! (step_plan.hpp): GEMM operands rounded to the activation type, float64 accumulation, fp16 paged KV. It is a
//! Backend, so the batch runner drives it like any other: the unit tests check the device's numerics (and the parity
//! bounds the [gpu] tests use) against the CPU backend on machines without a GPU.
#include <memory>

#include "engine/backend.hpp"

namespace t2s::engine::cuda {

//! An emulator of the CUDA backend over `model` with `kv_blocks` blocks, `max_batch_tokens` rows per pass and
//! `max_context` positions (0 = the model's). Slow (scalar float64 GEMMs): for small test models only.
std::unique_ptr<Backend> make_device_emulator(std::shared_ptr<const Model> model, int kv_blocks, int max_batch_tokens,
                                              int max_context = 0);

}  // namespace t2s::engine::cuda
