"""The UDA pipeline: the method's stages composed, plus the paper's ablation (Table 7).

Settings (each evaluated on held-out MR cases, T1 and T2 separately and together):

``only_ct``       segmenter trained on CT, applied to MR (no translation)
``cyclegan``      trained on image-space fake MR (CycleGAN)
``asit``          trained on anatomy-space fake MR (ASIT); MR seen through Sobel
``asit_mdm``      ASIT pseudo-labels on the unlabelled MR, T2 labels replaced by
                  matched, registered T1 labels (MDM); retrained on real MR
``asit_mdm_plf``  K self-training rounds from the MDM labels, uncertainty filter,
                  union ensemble, then the final small network
``oracle``        trained on the unlabelled MR with their true labels (upper bound)

Every stage is cached under the run folder (:mod:`flare_uda.pipeline.cache`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from flare_uda._atomic import write_json
from flare_uda._device import resolve_device
from flare_uda.metrics import MetricRow, evaluate_cases
from flare_uda.pipeline import stages
from flare_uda.pipeline.cache import Stage, StageCache
from flare_uda.pipeline.config import UDAConfig
from flare_uda.pseudolabel import UncertaintyFilter, run_self_training
from flare_uda.registration.mdm import MDMConfig, run_mdm
from flare_uda.volume import Case, Volume

FIXED_TRANSLATION = {"only_ct": "identity", "cyclegan": "cyclegan"}
"""Translators of the baseline settings; the method's own slot (``asit``) uses
``config.translation.method``, so a registered user translator can take it."""


class NoPseudoLabels(RuntimeError):
    """Every pseudo-label of a stage is empty: nothing to train the next stage on."""


def usable(cases: list[Case], stage: str) -> list[Case]:
    """Cases whose label holds foreground; raises :class:`NoPseudoLabels` if none does.

    An empty pseudo-label says "no organ anywhere", which would teach a network
    to predict background; such cases are left out of training (and counted).
    """
    kept = [c for c in cases if c.label is not None and c.label.array.any()]
    if not kept:
        raise NoPseudoLabels(
            f"{stage}: all {len(cases)} pseudo-labels are empty (the segmenter predicts no "
            "organ on any MR case); train the earlier stages longer"
        )
    return kept


@dataclass
class UDAResult:
    """Predictions on the test cases and their metric rows, per setting."""

    predictions: dict[str, dict[str, Volume]] = field(default_factory=dict)
    rows: dict[str, list[MetricRow]] = field(default_factory=dict)
    notes: dict[str, dict] = field(default_factory=dict)


class UDAPipeline:
    """Runs the method (and its ablation) from one :class:`UDAConfig`.

    Parameters
    ----------
    config : UDAConfig
    run_dir : path-like
        Stage caches, ``config.yaml`` and the report go here.
    progress : bool
        Progress bars per stage.
    device : str or torch.device
        Where networks train and run: ``"auto"`` (CUDA when available), ``"cpu"``,
        ``"cuda"``. Not part of the config: the same YAML runs anywhere, and
        cached stages are reused across devices.
    """

    def __init__(
        self,
        config: UDAConfig,
        run_dir: str | os.PathLike,
        progress: bool = True,
        device: str = "auto",
    ):
        if not isinstance(config, UDAConfig):
            raise TypeError(f"config must be a UDAConfig, got {type(config).__name__}")
        self.device = resolve_device(device)
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.cache = StageCache(self.run_dir / "stages")

    # ------------------------------------------------------------- helpers
    def _log(self, message: str) -> None:
        if self.progress:
            print(f"[flare-uda] {message}", flush=True)

    def _train(self, name: str, cases: list[Case], upstream: tuple[Stage, ...], section) -> tuple:
        cfg = section.train_config(self.config.seed)
        stage = self.cache.stage(f"train_{name}", cfg.to_dict(), upstream)
        self._log(f"train {name} on {len(cases)} cases ({cfg.iterations} iterations)")
        return stages.train(stage, cases, cfg, self.progress, self.device), stage

    def _predict(self, name, segmenter, cases, upstream, predictor) -> dict[str, Volume]:
        ids = sorted(c.case_id for c in cases)
        key = {"ids": ids, **predictor.inference.cache_key()}
        stage = self.cache.stage(f"predict_{name}", key, upstream)
        return stages.predict(stage, segmenter, cases, predictor)

    # --------------------------------------------------------------- stages
    def translate(self, setting: str, ct: list[Case], mr: list[Case]):
        """Stage 1: fit the setting's translator; fake MR cases with CT labels."""
        tcfg = self.config.translation
        method = FIXED_TRANSLATION.get(setting, tcfg.method)
        stage = self.cache.stage(
            f"translate_{method}",
            {"translation": tcfg.__dict__, "method": method, "data": self._data_key()},
        )
        self._log(f"translate CT -> MR with {method}")
        translator = tcfg.translator(
            method, work_dir=stage.dir / "work", seed=self.config.seed, device=str(self.device)
        )
        translator, fake = stages.translate_cases(stage, translator, ct, mr)
        return translator, fake, stage

    def _data_key(self) -> dict:
        return dict(self.config.data.__dict__)

    def run(self, ct: list[Case], mr: list[Case], mr_test: list[Case]) -> UDAResult:
        """Run every setting of ``config.ablation``.

        Parameters
        ----------
        ct : labelled CT cases (source)
        mr : MR cases used for adaptation; their labels, if any, are only used by ``oracle``
        mr_test : labelled MR cases, held out, for evaluation only
        """
        if not ct or not mr or not mr_test:
            raise ValueError(
                f"expected CT, MR and MR-test cases, got {len(ct)}, {len(mr)} and {len(mr_test)}"
            )
        missing = [c.case_id for c in list(ct) + list(mr_test) if c.label is None]
        if missing:
            raise ValueError(f"CT and MR-test cases need labels; these have none: {missing}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.to_yaml(self.run_dir / "config.yaml")
        result = UDAResult()
        unlabelled = [c.with_label(None) for c in mr]
        wanted = set(self.config.ablation)
        seg = self.config.segmentation
        asit = None
        for setting in ("only_ct", "cyclegan", "asit"):
            needed = setting in wanted or (
                setting == "asit" and wanted & {"asit_mdm", "asit_mdm_plf"}
            )
            if not needed:
                continue
            translator, fake, t_stage = self.translate(setting, ct, unlabelled)
            model, m_stage = self._train(setting, fake, (t_stage,), seg)
            predictor = stages.Predictor(translator.to_space, self.config.inference)
            if setting in wanted:
                result.predictions[setting] = self._predict(
                    setting, model, mr_test, (m_stage,), predictor
                )
            if setting == "asit":
                asit = (model, m_stage, predictor)
        if wanted & {"asit_mdm", "asit_mdm_plf"}:
            try:
                self._adapt(asit, unlabelled, mr_test, wanted, result)
            except NoPseudoLabels as err:  # reported, never silent: see report.md
                skipped = sorted(wanted & {"asit_mdm", "asit_mdm_plf"} - set(result.predictions))
                result.notes["skipped"] = {name: str(err) for name in skipped}
                self._log(f"skipped {skipped}: {err}")
        if "oracle" in wanted:
            labelled = [c for c in mr if c.label is not None]
            if not labelled:
                raise ValueError("the oracle setting needs labelled MR cases, got none")
            model, m_stage = self._train("oracle", labelled, (), seg)
            result.predictions["oracle"] = self._predict(
                "oracle",
                model,
                mr_test,
                (m_stage,),
                stages.Predictor(None, self.config.inference),
            )
        refs = {c.case_id: c.label for c in mr_test}
        # Score only organs every test label annotates (partial real labels, e.g. CHAOS).
        organs = sorted(set.intersection(*(set(c.annotated) for c in mr_test)))
        for setting, preds in result.predictions.items():
            result.rows[setting], _ = evaluate_cases(preds, refs, organs=organs)
        return result

    def _adapt(self, asit, unlabelled, mr_test, wanted, result: UDAResult) -> None:
        """Stages 2-4: ASIT pseudo-labels, MDM, self-training with PLF, final small net."""
        model, m_stage, predictor = asit
        pcfg = self.config.pseudolabel
        pseudo = self._predict("pseudo_asit", model, unlabelled, (m_stage,), predictor)
        # keyed by MDM's own fields: changing e.g. the ensemble reruns self-training only
        mdm_stage = self.cache.stage("mdm", pcfg.mdm_key(), (m_stage,))
        self._log("MDM: match T2 cases to T1 cases by volume, register, transfer labels")
        notes: dict = {}

        def build() -> list[Case]:
            cases = stages.with_labels(unlabelled, pseudo)
            worse = "T2" if pcfg.better_sequence == "T1" else "T1"
            # Sobel images (the paper registers images); pseudo-labels of a weak
            # segmenter can be empty, which label features cannot register.
            options: dict = {"features": "image" if pcfg.mdm_features == "anatomy" else "labels"}
            if pcfg.registrar in ("torch", "sitk"):
                options["shrink_factors"] = (8, 4, 2)
            mdm_cfg = MDMConfig(
                better=pcfg.better_sequence,
                worse=worse,
                registrar={"name": pcfg.registrar, "options": options},
                gate_dice=0.8 if pcfg.quality_gate else None,
            )
            results = run_mdm(cases, mdm_cfg)
            moved = {r.case_id: r.label for r in results if r.label is not None}
            notes["mdm"] = {
                r.case_id: {"matched": r.matched_id, "kept": r.label is not None} for r in results
            }
            return [c.with_label(moved[c.case_id]) if c.case_id in moved else c for c in cases]

        mdm_cases = stages.cached_cases(mdm_stage, build)
        if not mdm_stage.done:
            mdm_stage.mark_done(notes)
        result.notes["mdm"] = mdm_stage.info()
        image_space = stages.Predictor(None, self.config.inference)
        mdm_model, mdm_model_stage = self._train(
            "asit_mdm", usable(mdm_cases, "MDM"), (mdm_stage,), self.config.segmentation
        )
        if "asit_mdm" in wanted:
            result.predictions["asit_mdm"] = self._predict(
                "asit_mdm", mdm_model, mr_test, (mdm_model_stage,), image_space
            )
        if "asit_mdm_plf" not in wanted:
            return
        plf_stage = self.cache.stage("self_training", pcfg.self_training_key(), (mdm_model_stage,))
        self._log(
            f"self-training: {pcfg.rounds} rounds, keep {pcfg.keep_fraction:.0%} most certain"
        )
        seg_cfg = self.config.segmentation.train_config(self.config.seed)

        def train_fn(cases: list[Case], round_index: int):
            if round_index == 1:  # round 1 trains on the MDM labels: that model exists
                return mdm_model
            st = self.cache.stage(f"train_round{round_index}", seg_cfg.to_dict(), (plf_stage,))
            kept = usable(cases, f"round {round_index}")
            return stages.train(st, kept, seg_cfg, self.progress, self.device)

        st_result = run_self_training(
            train_fn,
            image_space,
            mdm_cases,
            rounds=pcfg.rounds,
            work_dir=plf_stage.dir,
            label_filter=UncertaintyFilter(keep_fraction=pcfg.keep_fraction),
            ensembler=pcfg.ensemble,
        )
        result.notes["self_training"] = {
            "uncertainty": st_result.uncertainty,
            "kept": st_result.kept,
        }
        write_json(self.run_dir / "self_training.json", result.notes["self_training"])
        final_cases = usable(stages.with_labels(mdm_cases, st_result.labels), "PLF ensemble")
        final, f_stage = self._train(
            "final", final_cases, (plf_stage,), self.config.final_segmentation
        )
        result.predictions["asit_mdm_plf"] = self._predict(
            "asit_mdm_plf", final, mr_test, (f_stage,), image_space
        )
