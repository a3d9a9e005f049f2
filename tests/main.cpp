// Catch2 main for every test binary. A filter that matches no test case passes (a module may have no
// [slow] or [gpu] tests), so each CTest entry runs what its label selects and nothing else.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  Catch::Session session;
  int rc = session.applyCommandLine(argc, argv);
  if (rc != 0) return rc;
  return session.run();
}
