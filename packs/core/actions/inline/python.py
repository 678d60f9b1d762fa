#!/usr/bin/env python3
"""core.python: runs the Python code of the `script` parameter, or the file named by `path`.

The action's parameters arrive as JSON on stdin. The code runs with `args` in sys.argv[1:], the
`input` parameter as JSON on its own stdin (inline code also gets it as the variable `params`), and
`cwd` and `env` applied. Its exit status and output are the action's.
"""
import io
import json
import os
import runpy
import sys


def main() -> None:
    raw = sys.stdin.read()
    params = json.loads(raw) if raw.strip() else {}
    if not isinstance(params, dict):
        sys.exit("core.python: the parameters must be a JSON object")
    env = params.get("env") or {}
    os.environ.update({str(k): str(v) for k, v in env.items()})
    if params.get("cwd"):
        os.chdir(params["cwd"])
    data = params.get("input")
    sys.stdin = io.StringIO(json.dumps(data) if "input" in params else "")
    args = [str(a) for a in params.get("args") or []]
    if params.get("path"):
        sys.argv = [params["path"], *args]
        runpy.run_path(params["path"], run_name="__main__")
        return
    script = params.get("script")
    if not isinstance(script, str) or not script.strip():
        sys.exit("core.python: give the code in `script` or a file in `path`")
    sys.argv = ["<script>", *args]
    code = compile(script, "<script>", "exec")
    exec(code, {"__name__": "__main__", "__file__": "<script>", "params": data})


if __name__ == "__main__":
    main()
