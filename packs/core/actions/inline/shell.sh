#!/bin/sh
# core.local_script: runs the shell script of the `script` parameter (see run.mjs). The parameters
# are read with the worker's Node.js (ATTUNE_NODE, else `node` on the PATH).
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
exec "${ATTUNE_NODE:-node}" "$here/run.mjs" shell
