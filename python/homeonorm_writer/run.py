"""One run folder, written as a training loop goes (docs/run-folder.md)."""
import contextlib
import datetime
import math
import os
import platform
import socket
import sys

import torch

from . import files, measures
from .safetensors import save as save_safetensors

FORMAT_VERSION = 2
WRITER_VERSION = "0.2.0"  # python/pyproject.toml's

# homeonorm's methods and networks (tests/presets.rs holds these lists to its registries).
METHODS = ["vanilla", "batch-norm", "weight-norm", "synaptic-scaling", "mean-only", "scale-only", "layer-norm",
           "group-norm", "instance-norm", "self-norm", "whitening", "adaptive-threshold", "homeostatic-scaling",
           "dendritic-norm", "divisive-norm"]
MODELS = ["lenet5", "mlp", "plain-cnn", "resnet20"]
# The local rules' settings each method reads, in homeonorm's order: a run whose values
# differ from the preset gets a folder level naming them (tests/presets.rs holds this to
# homeonorm's methods).
RULE_SETTINGS = {
    "adaptive-threshold": ["target_rate", "threshold_rate"],
    "homeostatic-scaling": ["target_rate", "scaling_rate"],
}

# The paper's protocol per dataset (section 4): what a setting left out means.
PRESETS = {
    "cifar10": dict(batch_size=32, lr=0.003, iterations=45_000, eval_every=1_000),
    "svhn": dict(batch_size=256, lr=0.01, iterations=8_000, eval_every=200),
}
# Every other setting with homeonorm's preset, in config.json's order (None: the dataset's preset).
SETTINGS = dict(
    model="lenet5", lr=None, batch_size=None, iterations=None, eval_every=None, record_every=100,
    eval_stats="batch", test_batch_size=1000, normalize_conv=True, conv_measures=False,
    normalization={"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, batch_order="dataloader", groups=2,
    whitening_group_size=16, target_rate=0.5, threshold_rate=0.03, scaling_rate=0.001, rate_window=100,
    branch_size=25,
)
CURVE_COLUMNS = ["iteration", "train_loss", "test_accuracy"]
ACTIVATION_COLUMNS = ["iteration", "layer", "unit", "activation_prob"]
UNIT_COLUMNS = ["layer", "unit", "activation_prob", "entropy", "mean_active_value", "alpha"]


def run_path(out, dataset, method, lr, seed, model="lenet5", **rules):
    """`<out>/[<model>/]<dataset>/<method>/lr<lr>/[<rules>/]seed<k>` (no network level for
    LeNet5), the learning rate as homeonorm names it; `<rules>` names the method's rule
    settings that differ from the preset (`target_rate0.2-threshold_rate0.05`), as
    homeonorm's folders do."""
    base = out if model == "lenet5" else os.path.join(out, model)
    changed = [f"{name}{files.rust_display(float(rules[name]))}" for name in RULE_SETTINGS.get(method, [])
               if name in rules and float(rules[name]) != float(SETTINGS[name])]
    levels = [base, dataset, method, f"lr{files.rust_display(float(lr))}"] + (["-".join(changed)] if changed else [])
    return os.path.join(*levels, f"seed{seed}")


def _now():
    """UTC now, RFC 3339 to the second, as homeonorm's provenance.json writes it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stretch_begun(device):
    """This process's stretch of the run as provenance.json records it (docs/run-folder.md):
    the writer, torch, the device, threads, host, command line and Slurm job; its end is
    set when the run finishes."""
    stretch = dict(from_iteration=0, to_iteration=0, started=_now(), homeonorm=f"homeonorm_writer {WRITER_VERSION}",
                   libtorch=torch.__version__, threads=torch.get_num_threads(), host=socket.gethostname(),
                   command=[sys.executable] + sys.argv)
    if device is not None:
        stretch["device"] = str(device)
        if torch.device(device).type == "cuda":
            stretch["device_name"] = torch.cuda.get_device_name(torch.device(device))
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        slurm = dict(job_id=job, array_job_id=os.environ.get("SLURM_ARRAY_JOB_ID"),
                     array_task_id=os.environ.get("SLURM_ARRAY_TASK_ID"),
                     restart_count=int(os.environ["SLURM_RESTART_COUNT"]) if "SLURM_RESTART_COUNT" in os.environ else None,
                     node=os.environ.get("SLURMD_NODENAME"))
        stretch["slurm"] = {k: v for k, v in slurm.items() if v is not None}
    return stretch


def _accuracy(name, value):
    """An accuracy as a float in [0, 1]; anything else (NaN, infinite, a percentage) is refused."""
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} {value!r}: an accuracy is a fraction from 0 to 1")
    return value


class Run:
    """A run folder for one seed of one setting.

    Opening it clears the folder and writes `config.json`; `finish()` writes the rest,
    `summary.json` last, so a run that stops before is an unfinished folder (homeonorm's
    `sweep` redoes it, `report` names it). Settings not given are homeonorm's presets
    for the dataset (the paper's protocol); a keyword that is not a setting is an error.

        run = Run("outputs/mine", dataset="cifar10", method="batch-norm", seed=0)
        run.watch({"fc1": net.fc1, "fc2": net.fc2})   # optional: the homeostasis measures
        ... run.step(it, loss.item()) after each step; run.log(it, accuracy) after each test
        with run.measuring():                          # optional: per-unit measures on the test set
            accuracy = test(net)
        run.finish()
    """

    def __init__(self, out, *, dataset, method, seed, data_files=(), data_dir=None, data_limit=None,
                 train_images=None, test_images=None, seed_batch=None, device=None, system=None, choices=None,
                 **settings):
        # Checked as homeonorm checks them: each names a folder level, so a name that is not
        # one of homeonorm's (`../x`, an absolute path) would write elsewhere.
        if dataset not in PRESETS:
            raise ValueError(f"dataset {dataset!r}: homeonorm has {sorted(PRESETS)}")
        if method not in METHODS:
            raise ValueError(f"method {method!r}: homeonorm has {METHODS}")
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"not homeonorm settings: {unknown} (docs/run-folder.md lists them)")
        values = {k: settings.get(k, v) for k, v in SETTINGS.items()}
        for key, value in PRESETS[dataset].items():
            if values[key] is None:
                values[key] = value
        if values["model"] not in MODELS:
            raise ValueError(f"model {values['model']!r}: homeonorm has {MODELS}")
        values["lr"] = float(values["lr"])
        if not (math.isfinite(values["lr"]) and values["lr"] > 0):  # (-0.0 > 0 is false)
            raise ValueError(f"lr {values['lr']!r}: a learning rate is a positive finite number")
        if int(seed) < 0:
            raise ValueError(f"seed {seed!r}: a seed is a whole number from 0")
        self.settings = dict(dataset=dataset, method=method, **values)
        self.seed = int(seed)
        rules = {name: values[name] for name in RULE_SETTINGS.get(method, [])}
        self.folder = run_path(out, dataset, method, values["lr"], self.seed, values["model"], **rules)
        os.makedirs(self.folder, exist_ok=True)
        for name in ("summary.json", "config.json", "curve.csv", "activation_prob.csv", "unit_stats.csv",
                     "model.safetensors", "provenance.json"):
            if os.path.exists(os.path.join(self.folder, name)):
                os.remove(os.path.join(self.folder, name))
        limit = data_limit if isinstance(data_limit, dict) else {"train": data_limit, "test": data_limit}
        config = dict(format_version=FORMAT_VERSION, **self.settings, seed=self.seed, data_limit=limit)
        recorded = dict(
            seed_batch=seed_batch or [self.seed], train_images=train_images, test_images=test_images,
            data_dir=None if data_dir is None else str(data_dir),
            data_files=[{"path": str(f), "bytes": os.path.getsize(f), "sha256": files.file_sha256(f)}
                        for f in data_files] or None,
            device=None if device is None else str(device),
            system=system or {"writer": "homeonorm_writer", "torch": torch.__version__,
                              "python": platform.python_version(), "cpu_threads": torch.get_num_threads()},
            choices=choices,
        )
        config.update({k: v for k, v in recorded.items() if v is not None})
        self.sizes = {"config.json": files.write_json(self.folder, "config.json", config)}
        self.stretch = _stretch_begun(device)
        self.curve, self.activation_rows = [], []
        self.watched, self.counters, self.units = {}, None, None
        self.losses, self.last_step, self.diverged_at = [], 0, None

    # ---------------------------------------------------------------- while training

    def watch(self, modules):
        """Records the homeostasis measures of these modules (name -> module; each output
        channel or feature is a unit, and the output may be taken before or after its
        ReLU: the measures count outputs > 0 and average the positive part): on the training batch every
        `record_every` steps, and on the test set inside `measuring()`. A module's
        `alpha` attribute, if it has one, is its units' α."""
        for name, module in modules.items():
            self.watched[name] = [module, None]
            module.register_forward_hook(lambda m, i, o, name=name: self._seen(name, m, o))

    def _seen(self, name, module, output):
        if self.counters is not None:
            self.counters.setdefault(name, measures.UnitCounter()).add(output)
        elif module.training:
            self.watched[name][1] = output

    def step(self, iteration, loss):
        """After each training step: its loss (a number) for the curve's mean training loss;
        the watched modules' activation probabilities on this batch every `record_every` steps."""
        self.last_step = iteration
        loss = float(loss)
        if self.diverged_at is None and not math.isfinite(loss):
            self.diverged_at = iteration
        self.losses.append(loss)
        if iteration % self.settings["record_every"] == 0:
            for name, (_, output) in self.watched.items():
                if output is not None:
                    self.activation_rows += [{"iteration": iteration, "layer": name, "unit": u, "activation_prob": p}
                                             for u, p in enumerate(measures.batch_activation_prob(output))]

    def log(self, iteration, test_accuracy, train_loss=None):
        """A curve row (test accuracy a fraction in [0, 1]); `train_loss` by default the mean
        of the losses `step` was given since the previous row (none: not recorded)."""
        test_accuracy = _accuracy("test_accuracy", test_accuracy)
        if train_loss is None and self.losses:
            train_loss = sum(self.losses) / len(self.losses)
        self.losses = []
        if train_loss is not None and not math.isfinite(float(train_loss)) and self.diverged_at is None:
            self.diverged_at = int(iteration)  # a loss that is not finite: the run diverged here
        self.curve.append({"iteration": int(iteration), "train_loss": None if train_loss is None else float(train_loss),
                           "test_accuracy": float(test_accuracy)})

    @contextlib.contextmanager
    def measuring(self):
        """Inside: every forward of the watched modules counts toward their per-unit
        measures (run the test set through the model once, at the end of training)."""
        self.counters = {}
        try:
            yield self
        finally:
            counters, self.counters = self.counters, None
        self.units = []
        for name, (module, _) in self.watched.items():
            if name in counters:
                self.units += counters[name].units(name, getattr(module, "alpha", None))

    def save_weights(self, state_dict):
        """model.safetensors: the final parameters and buffers (float32/float64/int64)."""
        state = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        path = os.path.join(self.folder, "model.safetensors")
        tmp = os.path.join(self.folder, ".model.safetensors.tmp")
        save_safetensors(tmp, state)
        os.replace(tmp, path)
        self.sizes["model.safetensors"] = os.path.getsize(path)

    # ---------------------------------------------------------------- at the end

    def finish(self, final_accuracy=None, test_accuracy_batch1=None, wall_time_s=None):
        """Writes the curve, the measures recorded, and `summary.json` last. The final
        accuracy is by default the last curve row's. A loss that was not finite makes
        the run diverged: its curve and heat map stop before it, and it has no measures."""
        final_accuracy = None if final_accuracy is None else _accuracy("final_accuracy", final_accuracy)
        if test_accuracy_batch1 is not None:
            test_accuracy_batch1 = _accuracy("test_accuracy_batch1", test_accuracy_batch1)
        diverged = self.diverged_at
        curve = [r for r in self.curve if diverged is None or r["iteration"] < diverged]
        if final_accuracy is None and curve and not diverged:
            final_accuracy = curve[-1]["test_accuracy"]
        self.sizes["curve.csv"] = files.write_csv(self.folder, "curve.csv", CURVE_COLUMNS, curve)
        if self.watched:
            rows = [r for r in self.activation_rows if diverged is None or r["iteration"] < diverged]
            self.sizes["activation_prob.csv"] = files.write_csv(self.folder, "activation_prob.csv",
                                                                ACTIVATION_COLUMNS, rows)
        units = self.units if self.units is None or not diverged else []
        if units is not None:
            self.sizes["unit_stats.csv"] = files.write_csv(self.folder, "unit_stats.csv", UNIT_COLUMNS, units)
        best = None
        for row in curve:  # the last of equal maxima, as homeonorm's
            if best is None or row["test_accuracy"] >= best["test_accuracy"]:
                best = row
        summary = {
            "outcome": "diverged" if diverged else "complete", "diverged_at": diverged,
            "iterations": diverged or self.last_step or (curve[-1]["iteration"] if curve else 0),
            "final_accuracy": None if diverged else final_accuracy,
            "test_accuracy_batch1": None if diverged else test_accuracy_batch1,
            "best_accuracy": best and best["test_accuracy"], "best_iteration": best and best["iteration"],
            "final_train_loss": curve[-1]["train_loss"] if curve else None, "wall_time_s": wall_time_s,
            "layers": [measures.layer_summary(n, [u for u in units if u["layer"] == n])
                       for n in self.watched if any(u["layer"] == n for u in units or [])],
            "files": self.sizes,
        }
        stretch = dict(self.stretch, to_iteration=summary["iterations"], ended=_now())
        self.sizes["provenance.json"] = files.write_json(self.folder, "provenance.json", {"stretches": [stretch]})
        files.write_json(self.folder, "summary.json", summary)
        return summary
