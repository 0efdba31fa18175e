import numpy as np
import pytest

from sci_lightning.data.folds import make_fold
from sci_lightning.errors import SCIConfigError

LABELS = [c for c in "ABCDE" for _ in range(24)]
SCENES = [f"s{i % 12}" for i in range(len(LABELS))]  # 12 subjects, each seen by every camera


@pytest.mark.parametrize("group_by", ["image", "scene"])
def test_every_fold_is_disjoint_and_covers_all(group_by):
    n_folds, seen_test = 5, []
    for fold in range(n_folds):
        s = make_fold(LABELS, SCENES, fold, n_folds, seed=1, group_by=group_by)
        sets = [set(s.train), set(s.val), set(s.test)]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        assert len(s.train) + len(s.val) + len(s.test) == len(LABELS)
        assert set(np.asarray(LABELS)[s.test]) == set("ABCDE")  # stratified: every class in every test fold
        assert len(s.val) > 0
        if group_by == "scene":  # no subject on two sides
            scenes = [{SCENES[i] for i in part} for part in (s.train, s.val, s.test)]
            assert not (scenes[0] & scenes[2] or scenes[1] & scenes[2] or scenes[0] & scenes[1])
        seen_test.extend(s.test.tolist())
    assert sorted(seen_test) == list(range(len(LABELS)))  # each image tested exactly once


def test_deterministic_in_seed():
    a = make_fold(LABELS, SCENES, 2, 5, seed=7)
    b = make_fold(LABELS, SCENES, 2, 5, seed=7)
    c = make_fold(LABELS, SCENES, 2, 5, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test)))
    assert not np.array_equal(a.test, c.test)


@pytest.mark.parametrize(
    "kwargs,setting",
    [
        ({"fold": 10, "n_folds": 10}, "fold"),
        ({"fold": -1, "n_folds": 10}, "fold"),
        ({"fold": 0, "n_folds": 1}, "n_folds"),
        ({"fold": 0, "n_folds": 30}, "n_folds"),  # 24 images per class < 30 folds
    ],
)
def test_clear_errors(kwargs, setting):
    with pytest.raises(SCIConfigError) as err:
        make_fold(LABELS, SCENES, seed=0, **kwargs)
    assert err.value.setting == setting


def test_unknown_group_by():
    with pytest.raises(SCIConfigError, match="group_by"):
        make_fold(LABELS, SCENES, 0, 5, 0, group_by="subject")
