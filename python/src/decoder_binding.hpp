// Registers longnet._C.Decoder (decoder_binding.cpp).
#pragma once

#include <nanobind/nanobind.h>

namespace longnet::python {
void bind_decoder(nanobind::module_& m);
}
