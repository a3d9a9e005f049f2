// Catch2 main for every test binary. CTest passes `--warn NoTests`, so an entry whose filter selects no test case
// fails; tests/CMakeLists.txt registers a label's entry only for binaries with tests of that tag.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  Catch::Session session;
  int rc = session.applyCommandLine(argc, argv);
  if (rc != 0) return rc;
  return session.run();
}
