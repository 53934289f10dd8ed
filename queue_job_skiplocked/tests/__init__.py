from . import test_skiplocked
