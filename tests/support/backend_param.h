// Test-name suffix for tests parameterized over the reactor backends ("io_uring", "epoll").
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "transport/reactor.h"

namespace confab::test_support {

inline std::string backend_param_name(const ::testing::TestParamInfo<transport::BackendChoice>& info) {
  return std::string(info.param == transport::BackendChoice::kIoUring ? "io_uring"
                     : info.param == transport::BackendChoice::kEpoll ? "epoll"
                                                                       : "auto");
}

}  // namespace confab::test_support
