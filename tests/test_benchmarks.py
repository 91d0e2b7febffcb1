"""The benchmark harness: every job parses its smallest plan; one job runs end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

run = pytest.importorskip("benchmarks.run")
from benchmarks._common import SHARED_DATA  # noqa: E402
from benchmarks.jobs import JOBS  # noqa: E402


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_job_parses_its_smallest_plan(name, tmp_path):
    job, args = run.parse([name, "--smallest", "--results-dir", str(tmp_path)])
    assert job is JOBS[name] and job.name == name
    assert args.smallest and args.results_dir == tmp_path
    assert job.summary and job.smallest, "every job documents itself and has a smallest plan"


def test_no_job_name_runs_the_documented_comparison(tmp_path):
    job, args = run.parse(["--shape", "small", "--no-extras", "--tools", "ours"])
    assert job.name == "compare" and args.shape == "small" and args.tools == "ours"
    assert args.results_dir.name == "small"


def test_gpu_job_without_cuda_says_so_in_one_line(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert run.main(["gpu"]) == run.UNAVAILABLE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA GPU" in err and "--device cpu --tiny" in err


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_DATA / "gpt2_tokenizer").is_dir(), reason="needs the shared GPT-2 tokenizer"
)
def test_modes_job_smallest_plan_runs_and_reports_ratios(tmp_path, capsys):
    status = run.main(["modes", "--smallest", "--in-process", "--threads", "1",
                       "--results-dir", str(tmp_path)])  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    assert out.startswith("Machine: ") and "torch " in out and "avx512_bf16" in out
    results = {
        json.loads(path.read_text())["spec"]["tuning"]: json.loads(path.read_text())
        for path in tmp_path.glob("modes__*.json")
        if not path.name.endswith(".spec.json")
    }
    assert set(results) == {"full", "lora", "head"}
    for result in results.values():
        assert len(result["epoch_s"]) == 1  # the smallest plan fits one epoch
        assert 0 < result["trainable_parameters"] <= result["parameters"]
    # Full training trains every weight; the cheaper modes far fewer.
    full = results["full"]
    assert full["trainable_parameters"] == full["parameters"]
    assert results["head"]["trainable_parameters"] < results["lora"]["trainable_parameters"]
    report = (tmp_path / "report.md").read_text().splitlines()
    rows = [line for line in report if line.startswith("| sst2")]
    assert [row.split("|")[2].strip() for row in rows] == ["full", "lora", "head"]
    speedups = [row.split("|")[7].strip() for row in rows]
    assert speedups[0] == "1.0x" and all(s.endswith("x") for s in speedups)
