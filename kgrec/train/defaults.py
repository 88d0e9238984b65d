"""Defaults that fit the data: what a config leaves at its default and the dataset cannot feed is
switched off before training, with a note for each change.

The built-in defaults train every tower on every input, which suits a rated dataset with item
text and a KG such as ml-100k. A dataset of clicks without ratings, a KG or item columns would
otherwise stop at the first part it cannot feed. Only fields left at their default change: not
given by the config file or a ``--set`` override (``RunConfig.given``, recorded by
:func:`~kgrec.train.load_config`), so a value written out is kept even where it is the default
(``model.like_threshold: 4`` on ratings from 2 to 10). Each change switches off something the
data cannot feed, so no setting that could train is lost (items without columns can still be
encoded from their raw ids by naming a template, ``text.template="{item_id}"``); a given value is
kept, and the model's own checks then say what is missing. Ratings that are all the same switch
the like tower off whenever ``model.like_threshold`` is left at its default, ``model.tasks``
given or not (no threshold could tell a like from them; a config whose only task is ``like`` is
refused), and ``eval.monitor`` left at ``auto`` then follows the tasks left. The changed config
is the one the run folder keeps (``config.yaml``), whose fields all count as given when it is
read back: it is fitted already, and fitting it again changes nothing.

==========================================  ================================================
the dataset has no ...                       fields at their default that change
==========================================  ================================================
rating column                                ``model.tasks`` loses ``rating`` and ``like``
ratings on a 1-5 scale                       ``model.like_threshold`` (4) becomes three
                                             quarters of the way up the training ratings'
                                             range, as 4 is on 1-5 (0.75 for 0/1 labels, 8
                                             on 2-10), like tower or not (explanations call
                                             a rating from it up "rated highly");
                                             ``model.tasks`` loses ``like`` when every
                                             training rating is the same
item columns (no ``NAME.item``, or one       ``model.use_text`` becomes false (the text would
of ``item_id`` alone)                        be the raw item ids)
relations (no KG triples, no multi-valued    ``model.use_graph`` becomes false and
item columns, see ``default_recipe``; or a   ``model.tasks`` loses ``kg``
recipe file that asks for none)
second item input (ID embeddings alone)      ``model.id_dropout`` becomes 0
room for 20 steps an epoch at 2,048 pairs    ``train.batch_size`` (2048) becomes the largest
a step (under 40,960 training pairs)         power of two from 64 that gives 20 steps
need of reverse edges (its recipe adds       ``model.graph_add_inverse`` becomes false
``r.inv``, ``inverse: true``, or the
``graph.path`` given was built so)
==========================================  ================================================
"""

from __future__ import annotations

import copy
import dataclasses
import math

from kgrec.data import Dataset
from kgrec.errors import ConfigError
from kgrec.graph import resolve_recipe
from kgrec.graph.kg import built_recipe
from kgrec.graph.recipe import GraphRecipe, check_relation_filters, find_recipe_file
from kgrec.models import ModelConfig
from kgrec.train.config import EvalSection, RunConfig, TrainSection, resolve_monitor

MIN_STEPS_PER_EPOCH = 20  # a training part too small for the default batch gets a smaller one (_batch_size)
MIN_FITTED_BATCH = 64

DEFAULT_LIKE_THRESHOLD = next(f.default for f in dataclasses.fields(ModelConfig) if f.name == "like_threshold")


def fit_defaults(config: RunConfig, dataset: Dataset) -> tuple[RunConfig, list[str]]:
    """``config`` with the defaults ``dataset`` cannot feed switched off (see the module's table),
    and one note per change, in words; ``config`` itself is not modified. The run folder's
    ``config.yaml`` shows the resulting fields.

    A dataset folder that holds its own split (``NAME.train/valid/test.inter``) is used as it
    is, so ``data.split`` is recorded as ``given``, with a note when the config asked for a split
    of its own. A graph built from a recipe gets the notes ``kgrec graph build`` prints too (an
    ``allow`` pattern that matches no relation)."""
    config, notes = _recorded_data(config, dataset)
    model = config.model
    tasks = model.tasks
    negatives = dataset.negative_counts().get("train", 0)
    if dataset.train.rating is None and _is_default(config, "tasks"):
        if negatives:  # clicks and impressions without one: the like tower tells them apart
            tasks = tuple(t for t in tasks if t != "rating")
            notes.append(f"{dataset.name} has no ratings: the rating tower is off; the like tower learns the "
                         f"interactions (label 1) against the {negatives:,} training pairs labelled 0")  # fmt: skip
        else:
            tasks = tuple(t for t in tasks if t not in ("rating", "like"))
            notes.append(f"{dataset.name} has no ratings: the rating and like towers are off")
    like_threshold = model.like_threshold
    if dataset.train.rating is not None and _is_default(config, "like_threshold"):
        # fitted without a like tower too: explanations call a rating at or above it "rated highly"
        fitted, fitted_tasks, note = _like_threshold(dataset, tasks, negatives)
        if not fitted_tasks:  # model.tasks given as [like]: switching it off left no task (a bare ConfigError)
            raise ConfigError(f"every training rating of {dataset.name} is {float(dataset.train.rating.min()):g}, so the "
                              f"like tower has nothing to tell a like from, and model.tasks {list(tasks)} has no other "
                              "task to train; add one (--set model.tasks=[retrieval])", key="model.tasks")  # fmt: skip
        if "like" in tasks:
            like_threshold, tasks = fitted, fitted_tasks
            notes += [note] if note else []
        elif fitted != like_threshold:
            like_threshold = fitted
            notes.append(note)
    use_text = model.use_text
    if not dataset.item_features and config.text.template is None and _is_default(config, "use_text"):
        use_text = False
        where = f"no {dataset.name}.item" if dataset.item_rows is None else f"{dataset.name}.item has only item_id"
        notes.append(f"{dataset.name} has no item columns ({where}): the text input is off")
    use_graph = model.use_graph
    # A recipe asking for KG triples the dataset lacks counts as making relations: building it then says so.
    # Resolved only where something reads the graph: a recipe that does not fit the data stops no graph-less run.
    needs_graph = use_graph or "kg" in tasks or "graph" in model.user_parts
    recipe = resolve_recipe(dataset, config.graph.recipe or None)[0] if config.graph.path is None and needs_graph else None
    if recipe is not None and not (recipe.makes_relations or config.graph.users):
        changed = []
        if _is_default(config, "use_graph"):
            use_graph = False
            changed.append("the graph input")
        if _is_default(config, "tasks") and "kg" in tasks:
            tasks = tuple(t for t in tasks if t != "kg")
            changed.append("the kg tower")
        if changed:
            found = config.graph.recipe or find_recipe_file(dataset.name)  # a recipe file, else default_recipe's
            why = (f"{dataset.name} has no KG triples and no multi-valued item columns" if found is None
                   else f"the graph recipe {found} asks for no relations (no kg, attributes or users)")  # fmt: skip
            notes.append(f"{why}: {' and '.join(changed)} {'are' if len(changed) > 1 else 'is'} off")
    id_dropout = model.id_dropout
    if model.use_item_id and not (use_text or use_graph) and id_dropout > 0 and _is_default(config, "id_dropout"):
        id_dropout = 0.0
        notes.append("item IDs are the only item input, with nothing to fall back on: no ID dropout")
    # The graph encoder runs for the kg tower and a graph user part too, not only for use_graph.
    needs_graph = use_graph or "kg" in tasks or "graph" in model.user_parts
    if recipe is not None and needs_graph:
        notes += check_relation_filters(dataset, recipe)  # allow patterns that match nothing, as graph build says
    add_inverse = model.graph_add_inverse
    if needs_graph and add_inverse and _is_default(config, "graph_add_inverse") and _adds_inverses(config, recipe):
        add_inverse = False  # r.inv is the reverse of r: reverse edges of both made four edge types of one relation
        whose = "the recipe adds" if recipe is not None else f"the graph {config.graph.path} holds"
        notes.append(f"{whose} inverse relations (inverse: true), so the graph encoder adds no reverse edges "
                     "of its own (model.graph_add_inverse off)")  # fmt: skip
    text_affinity = model.like_text_affinity
    if text_affinity and not ("like" in tasks and use_text):  # it reads both
        text_affinity = False
        notes.append(f"the {'text input' if 'like' in tasks else 'like tower'} is off, so model.like_text_affinity is too")
    batch_size = _batch_size(config, dataset, notes)
    fitted = dict(tasks=tasks, like_threshold=like_threshold, use_text=use_text, use_graph=use_graph,
                  id_dropout=id_dropout, graph_add_inverse=add_inverse, like_text_affinity=text_affinity)  # fmt: skip
    if not (model.use_item_id or use_text or use_graph):  # use_item_id given false: the fit took the rest
        raise ConfigError(f"model.use_item_id is false, and {dataset.name} has neither item columns nor relations for "
                          "the text or graph input: no item input is left; set model.use_item_id=true (or name a "
                          "text template, text.template=\"{item_id}\")", key="model.use_item_id")  # fmt: skip
    evaluation = _monitor(config, tasks)
    if evaluation.monitor != config.eval.monitor:
        notes.append(f"eval.monitor (auto) follows model.tasks {list(tasks)}: "
                     f"{evaluation.monitor or 'none, so the run trains train.max_epochs and keeps the last epoch'}")  # fmt: skip
    if all(getattr(model, name) == value for name, value in fitted.items()) and batch_size == config.train.batch_size:
        return config, notes
    train = dataclasses.replace(config.train, batch_size=batch_size)
    return dataclasses.replace(config, model=dataclasses.replace(model, **fitted), train=train, eval=evaluation), notes


def _monitor(config: RunConfig, tasks: tuple[str, ...]) -> EvalSection:
    """``eval``, with ``eval.monitor`` resolved again for the fitted ``tasks`` where it is what
    ``auto`` made of the config's own tasks (:func:`~kgrec.train.config.resolve_monitor`, as
    :func:`~kgrec.train.load_config` resolves it) and not given: ``auc`` of a like tower switched
    off became a monitor that no task reports, which the run folder's ``config.yaml`` then refused."""
    if tasks == config.model.tasks or "eval.monitor" in config.given:
        return config.eval

    def auto(tasks: tuple[str, ...]) -> str | None:
        probe = copy.copy(config)  # not dataclasses.replace: that would check the sections again
        probe.model, probe.eval = copy.copy(config.model), dataclasses.replace(config.eval, monitor="auto")
        probe.model.tasks = tasks
        return resolve_monitor(probe)

    if config.eval.monitor != auto(config.model.tasks):
        return config.eval
    return dataclasses.replace(config.eval, monitor=auto(tasks))


def _adds_inverses(config: RunConfig, recipe: GraphRecipe | None) -> bool:
    """Whether the graph holds generated inverse relations: its recipe says ``inverse: true``, or,
    for a graph given by ``graph.path``, the recipe its manifest records did."""
    if recipe is not None:
        return recipe.inverse
    return built_recipe(config.graph.path).get("inverse") is True


def _batch_size(config: RunConfig, dataset: Dataset, notes: list[str]) -> int:
    """``train.batch_size``, or, left at its default on a training part too small for it, the
    largest power of two from :data:`MIN_FITTED_BATCH` that gives an epoch at least
    :data:`MIN_STEPS_PER_EPOCH` steps (with a note): at 2,048 pairs a step, 6,000 training
    pairs make 3 steps an epoch, too few for the rating and like towers to learn before early
    stopping ends the run."""
    size = config.train.batch_size
    (spec,) = [f for f in dataclasses.fields(TrainSection) if f.name == "batch_size"]
    pairs = len(dataset.train)
    if "train.batch_size" in config.given or size != spec.default or pairs >= MIN_STEPS_PER_EPOCH * size:
        return size
    fitted = max(MIN_FITTED_BATCH, 2 ** int(math.log2(max(pairs // MIN_STEPS_PER_EPOCH, 1))))
    if fitted >= size:
        return size
    notes.append(f"{dataset.name} has {pairs:,} training pairs: train.batch_size {fitted}, so that an epoch takes "
                 f"{math.ceil(pairs / fitted)} steps ({size} would make {math.ceil(pairs / size)})")  # fmt: skip
    return fitted


def _like_threshold(dataset: Dataset, tasks: tuple[str, ...], negatives: int = 0) -> tuple[float, tuple[str, ...], str]:
    """The like label's threshold for ratings running from ``lo`` to ``hi``: ``lo + 3/4 (hi - lo)``,
    which is the default 4 on a 1-5 scale; when every rating is the same, ``lo`` with
    ``negatives`` (pairs labelled negative in the data: every interaction is then a like), else
    the like tower is off."""
    ratings = dataset.train.rating
    lo, hi = float(ratings.min()), float(ratings.max())
    if lo == hi and negatives:
        return lo, tasks, (f"every training rating of {dataset.name} is {lo:g}: a like is an interaction "
                           f"(model.like_threshold {lo:g}), told from the {negatives:,} training pairs labelled 0")  # fmt: skip
    if lo == hi:
        return DEFAULT_LIKE_THRESHOLD, tuple(t for t in tasks if t != "like"), (
            f"every training rating of {dataset.name} is {lo:g}: the like tower is off (nothing to tell a like from)"
        )
    threshold = round(lo + 0.75 * (hi - lo), 6)
    if threshold == DEFAULT_LIKE_THRESHOLD:
        return threshold, tasks, ""
    return threshold, tasks, (
        f"{dataset.name}'s training ratings run from {lo:g} to {hi:g}: a like is a rating >= {threshold:g} "
        f"(model.like_threshold: three quarters of the way up, as 4 is on 1-5)"
    )


def _recorded_data(config: RunConfig, dataset: Dataset) -> tuple[RunConfig, list[str]]:
    """``data.split`` recorded as ``given`` for a folder holding its own split, and ``data.name``
    as the folder's dataset (the default ``ml-100k`` is the one fetched when no path is given)."""
    data = config.data
    if data.path and data.name != dataset.name:
        config = copy.copy(config)  # not dataclasses.replace: that would check the other sections again
        config.data = data = dataclasses.replace(data, name=dataset.name)
    if dataset.split != "given" or data.split == "given":
        return config, []
    # data.seed applies with a given split too where it seeds the KG hold-out (graph.kg_holdout)
    asked = [f"data.{f.name}={getattr(data, f.name)}" for f in dataclasses.fields(data)
             if f.name in ("split", "ratios", "cold_item_share", "seed")
             and (getattr(data, f.name) != f.default or f"data.{f.name}" in config.given)
             and not (f.name == "seed" and config.graph.kg_holdout > 0)]  # fmt: skip
    note = f"{dataset.name} holds its own split ({dataset.name}.train/valid/test.inter), used as it is"
    notes = [f"{note}: {', '.join(asked)} do{'es' if len(asked) == 1 else ''} not apply"] if asked else []
    given = copy.copy(config)  # not dataclasses.replace: that would check the other sections again
    given.data = dataclasses.replace(data, split="given")
    return given, notes


def _is_default(config: RunConfig, name: str) -> bool:
    """Whether ``model.NAME`` is left at its default: not given by the config file or an override
    (``config.given``: a default value written out is kept too) and equal to the default."""
    (spec,) = [f for f in dataclasses.fields(ModelConfig) if f.name == name]
    return f"model.{name}" not in config.given and getattr(config.model, name) == spec.default
