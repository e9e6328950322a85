"""tests/python/test_docs_example.py: the seed3d training loop of
docs/python.md ("Training seed3d") runs as written: its code block is
executed and train() called for one step of two samples, with a
validation pass; the model has seed3d's trainable parameter count
(885,441, docs/train.md). Exits 77 when torch is not installed.

usage: test_docs_example.py TNREC_BINARY SCRATCH_DIR DOCS_PYTHON_MD"""
import contextlib
import io
import os
import re

from pycommon import args, check, finish

try:
    import torch
except ImportError:
    torch = None


def main():
    _, scratch, rest = args()
    if torch is None:
        print("test_docs_example: skipped: python3-torch is not installed")
        raise SystemExit(77)
    text = open(rest[0]).read()
    part = text[text.index("### Training seed3d"):]
    code = re.search(r"```python\n(.*?)```", part, re.S).group(1)
    env = {"__name__": "docs_example"}
    exec(compile(code, "docs/python.md", "exec"), env)
    torch.set_num_threads(2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model = env["train"](os.path.join(scratch, "float16"), os.path.join(scratch, "uint8"), epochs=1, batch=2,
                             max_steps=1, threads=1)
    print(out.getvalue(), end="")
    check(re.match(r"epoch 1: loss \d+\.\d+, val accuracy \d\.\d+", out.getvalue()) is not None,
          "output %r" % out.getvalue())
    n = sum(p.numel() for p in model.parameters())
    check(n == 885441, "seed3d has %d trainable parameters, expected 885,441" % n)
    finish("test_docs_example")


main()
