"""The value sets as a fixture: every test that takes `value_set` runs once per set."""

import pytest

from support import VALUE_SETS


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def value_set(request):
    return request.param, VALUE_SETS[request.param]


