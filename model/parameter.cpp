#include "model/parameter.hpp"

#include <random>

namespace longnet {

Parameter make_parameter(std::string name, Shape shape, DType dtype, double std, uint64_t seed,
                         bool weight_decay) {
  Parameter p;
  p.name = std::move(name);
  if (std == 0.0) {
    p.value = Tensor::zeros(shape, dtype);
  } else {
    // Normal draws in double, rounded once to the dtype, so float32 and float64 models
    // start from the same values. The generator is fixed by the C++ standard (mt19937_64)
    // and the transform by libstdc++: the same on every rank and machine of one build.
    std::mt19937_64 generator(seed);
    std::normal_distribution<double> normal(0.0, std);
    Tensor values(shape, DType::float64);
    for (double& x : values.span<double>()) x = normal(generator);
    p.value = values.cast(dtype);
  }
  p.grad = Tensor::zeros(shape, dtype);
  p.weight_decay = weight_decay;
  return p;
}

}  // namespace longnet
