import re

from hypothesis import given
from hypothesis import strategies as st

from mlops_core.naming import MAX_NAME_LENGTH, job_name, new_execution_id, resource_name

VALID = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?")


def test_plain_names_are_kept_readable():
    execution_id = "8f14e45f-ceea-467f-a8f1-0123456789ab"
    assert job_name("abalone", "Train", execution_id) == f"abalone-Train-{execution_id}"


def test_long_names_are_shortened_with_a_stable_hash():
    name = job_name("a-very-long-model-name-for-abalone", "Preprocess", "8f14e45f-ceea-467f-a8f1-0123456789ab")
    assert len(name) <= MAX_NAME_LENGTH and VALID.fullmatch(name)
    assert name == job_name("a-very-long-model-name-for-abalone", "Preprocess", "8f14e45f-ceea-467f-a8f1-0123456789ab")
    assert name.startswith("a-very-long-model-name-for-abalone-Preprocess")


def test_invalid_characters_are_replaced_and_disambiguated():
    assert VALID.fullmatch(resource_name("my_model", "Train", "run.1"))
    assert resource_name("a_b", "x") != resource_name("a-b", "x")


def test_execution_ids_are_fresh_and_valid():
    first, second = new_execution_id(), new_execution_id()
    assert first != second and VALID.fullmatch(first)


parts = st.text(min_size=1, max_size=80)


@given(st.lists(parts, min_size=1, max_size=4))
def test_every_name_is_valid_for_sagemaker(values):
    name = resource_name(*values)
    assert 1 <= len(name) <= MAX_NAME_LENGTH
    assert VALID.fullmatch(name), name


@given(st.lists(parts, min_size=1, max_size=3), st.lists(parts, min_size=1, max_size=3))
def test_different_inputs_never_share_a_name(a, b):
    if "-".join(a) != "-".join(b):
        assert resource_name(*a) != resource_name(*b)
