/* berth-pause: the pod's pause process. It holds the pod's namespaces open, reaps zombies
 * (it is PID 1 of the pod's PID namespace) and exits 0 on SIGINT or SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BERTH_PAUSE_VERSION
#define BERTH_PAUSE_VERSION "0.0.0"
#endif

static void onStop(int sig) {
  (void)sig;
  _exit(0);
}

static void onChild(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(int argc, char** argv) {
  if (argc == 2 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
    printf("berth-pause %s\n", BERTH_PAUSE_VERSION);
    return 0;
  }
  if (argc > 1) {
    fprintf(stderr, "usage: %s [-v]\n", argv[0]);
    return 2;
  }
  if (getpid() != 1) fprintf(stderr, "berth-pause: warning: not running as PID 1\n");

  struct sigaction stop;
  memset(&stop, 0, sizeof stop);
  stop.sa_handler = onStop;
  sigemptyset(&stop.sa_mask);
  struct sigaction child;
  memset(&child, 0, sizeof child);
  child.sa_handler = onChild;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigemptyset(&child.sa_mask);
  if (sigaction(SIGINT, &stop, NULL) != 0 || sigaction(SIGTERM, &stop, NULL) != 0 ||
      sigaction(SIGCHLD, &child, NULL) != 0) {
    fprintf(stderr, "berth-pause: sigaction: %s\n", strerror(errno));
    return 1;
  }
  for (;;) pause();
  fprintf(stderr, "berth-pause: error: infinite loop terminated\n");
  return 42;
}
