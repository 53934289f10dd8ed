from . import main
from . import job
