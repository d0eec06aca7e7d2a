"""``python -m gluonloss`` runs the self-check and reports success."""
import gluonloss.__main__ as main_module
from _package_under_test import run_python


def test_main_passes_and_prints_every_loss(tmp_path):
    # A fresh interpreter in an empty folder, on the package under test.
    result = run_python(["-m", "gluonloss"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, *_ in main_module.CONFIGS:
        assert name in result.stdout
    for name, _ in main_module.CTC_CONFIGS:
        assert name in result.stdout
    assert "FAILED" not in result.stdout
    # The configuration comes first, above the table.
    lines = result.stdout.splitlines()
    assert lines[0].startswith("gluonloss ") and "  kernels: " in lines[1]
    assert lines.index("  compiler:") < next(i for i, line in enumerate(lines)
                                             if line.startswith("loss "))


def test_main_fails_when_a_gradient_is_wrong(monkeypatch, capsys):
    from gluonloss import elementwise

    def broken(self, pred, label, sample_weight=None, out_grad=None):
        return 1.01 * self._call((pred, label), (sample_weight,), out_grad, False, True)[1]

    monkeypatch.setattr(elementwise.HingeLoss, "gradient", broken)
    assert main_module.main() == 1
    assert "FAILED" in capsys.readouterr().out
