// The message of the longnet::Error an action throws, for tests that check what a
// failure says. A test fails when the action throws none.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "runtime/error.hpp"

namespace longnet::test {

template <typename Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a longnet::Error";
  return "";
}

}  // namespace longnet::test
