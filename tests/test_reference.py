"""The authors' reference (`models/he_keras.py`) on Keras's PyTorch backend, the one its chapter does not run: a process has
one Keras backend, chosen at the first import, so the run happens in a subprocess."""
import json
import subprocess
import sys

SCRIPT = """
import json
from movierec_nb.data import synthetic_frames
from movierec_nb.models.he_keras import fit_reference, test_rows
from movierec_nb.splits import LeaveOneOut, binarize, sample_candidates, split
s = split(binarize(synthetic_frames(40, 60, 800, fmt="ml-1m", seed=2)["ratings"]), LeaveOneOut(validation=False))
r = fit_reference("GMF", s, test_rows(sample_candidates(s, 20, seed=1)), seed=0, epochs=3, batch_size=64, backend="torch")
print(json.dumps({"backend": r["backend"], "loss": r["history"]["loss"].tolist()[1:], "users": len(r["per_user"])}))
"""


def test_reference_runs_on_the_pytorch_backend():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["backend"] == "torch" and r["users"] == 40 and len(r["loss"]) == 3 and r["loss"][-1] < r["loss"][0]
