"""How long `kgrec` commands take from the shell, start-up included, against importing torch.

Each command runs --repeats times as a fresh process (the way a user or a cron job runs it) and
the median wall time is printed. Baseline in the same run: `python -c 'import torch'`, the floor
of any command that touches a model or its vectors; the ratio column is each command's time over
it. Beside it, what the rest of the training stack (PyTorch Geometric, Lightning, transformers)
adds to an import. To time another version of kgrec with this script, put its checkout first on
PYTHONPATH and run from outside this one (the commands run in this script's environment):

    python scripts/bench_startup.py runs/ml-100k [--data ~/.cache/kgrec/datasets/ml-100k] [--repeats 5]
    cd /tmp && PYTHONPATH=/path/to/other/checkout python /path/to/scripts/bench_startup.py /path/to/runs/ml-100k
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import kgrec  # which checkout the commands run (the first on sys.path, as theirs)

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", type=Path, help="run folder written by `kgrec train` (its index is built first if missing)")
parser.add_argument("--data", type=Path, help="a dataset folder for `kgrec data info` (default: the run's)")
parser.add_argument("--repeats", type=int, default=5, help="runs of each command; the median is printed")
args = parser.parse_args()
if args.repeats < 1:
    parser.error(f"--repeats must be at least 1, got {args.repeats}")

beside = Path(sys.executable).with_name("kgrec")  # this interpreter's environment, activated or not
command_path = str(beside) if beside.is_file() else shutil.which("kgrec") or sys.exit("no kgrec command: install kgrec first")
ids = json.loads((args.run / "id_maps.json").read_text(encoding="utf-8"))
data = args.data or Path(json.loads((args.run / "manifest.json").read_text(encoding="utf-8"))["dataset_path"])
user, item = ids["users"][0], ids["items"][0]
python = sys.executable
commands = {
    "python -c pass": [python, "-c", "pass"],
    "import torch (baseline)": [python, "-c", "import torch"],
    "import torch, PyG, Lightning, transformers": [python, "-c", "import torch, torch_geometric, lightning, transformers"],
    "kgrec --help": [command_path, "--help"],
    "kgrec data info DATA": [command_path, "data", "info", str(data)],
    f"kgrec recommend RUN --user {user}": [command_path, "recommend", str(args.run), "--user", user],
    f"kgrec similar RUN --item {item}": [command_path, "similar", str(args.run), "--item", item],
}
subprocess.run(commands[f"kgrec recommend RUN --user {user}"], check=True, capture_output=True)  # builds a missing index

seconds = {}
for name, command in commands.items():
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-2000:]}")
    seconds[name] = statistics.median(times)

baseline = seconds["import torch (baseline)"]
print(f"{args.run}, kgrec from {Path(kgrec.__file__).parent}, median of {args.repeats} runs each\n")
print(f"{'command':<46}{'seconds':>9}{'x baseline':>12}")
for name, value in seconds.items():
    print(f"{name:<46}{value:>9.2f}{'x' + format(value / baseline, '.2f'):>12}")
