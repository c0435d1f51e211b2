"""The pod sandbox ("pause") image, built here: a static C binary in a one-file OCI image.

Every pod's network namespace is held by a pause container; containerd pulls its
`sandbox_image` on the first pod unless it is present, and no registry is reachable, so the
image is made locally (gcc -static, about 800 KB) and cached by the hash of its source.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from e2e.devcluster.oci import LayerFile, layer_from_files, write_image_archive

PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
/* PID 1 of the pod sandbox: exit on TERM/INT, reap zombies, otherwise sleep forever. */
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction term = {.sa_handler = quit}, child = {.sa_handler = reap};
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
  return 1;
}
"""


def build_pause_archive(cache_dir: Path, name: str) -> Path:
    """The OCI archive of the pause image `name`, built once per source and name."""
    key = hashlib.sha256((PAUSE_C + name).encode()).hexdigest()[:16]
    archive = cache_dir / f"pause-{key}.oci.tar"
    if archive.is_file():
        return archive
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp, "pause.c"), Path(tmp, "pause")
        source.write_text(PAUSE_C)
        subprocess.run(
            ["gcc", "-static", "-Os", "-s", "-o", str(binary), str(source)],
            check=True,
            capture_output=True,
        )
        layer = layer_from_files([LayerFile("pause", binary.read_bytes())])
    staging = archive.with_suffix(".tmp")
    write_image_archive(staging, name, [layer], {"Entrypoint": ["/pause"], "User": "65535:65535"})
    staging.replace(archive)  # atomic: a concurrent reader never sees half an archive
    return archive
