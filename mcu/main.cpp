// confab-mcu: the MCU node daemon.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  CLI::App app{"confab-mcu: Confab MCU node"};
  CLI11_PARSE(app, argc, argv);
  spdlog::info("confab-mcu starting");
  return 0;
}
