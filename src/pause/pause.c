/* berth-pause: the process of a pod sandbox when no sandbox image is configured
 * (sandbox_image = ""). It holds the pod's namespaces open, reaps the orphans it inherits as the
 * pod's init (pid 1 of a shared pid namespace), and exits 0 on SIGINT or SIGTERM, as the pause
 * image's binary does. Static, so a pod never needs anything but this one file. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(int argc, char** argv) {
  if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
    static const char kVersion[] = "berth-pause " BERTH_PAUSE_VERSION "\n";
    if (write(STDOUT_FILENO, kVersion, sizeof kVersion - 1) < 0) return 1;
    return 0;
  }
  if (getpid() != 1) {
    static const char kWarn[] = "berth-pause: not running as pid 1, orphans go elsewhere\n";
    if (write(STDERR_FILENO, kWarn, sizeof kWarn - 1) < 0) {
      /* nothing to do: stderr may be /dev/null */
    }
  }
  struct sigaction stop;
  memset(&stop, 0, sizeof stop);
  stop.sa_handler = on_stop;
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGTERM, &stop, NULL);
  struct sigaction child;
  memset(&child, 0, sizeof child);
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
  return 0;
}
