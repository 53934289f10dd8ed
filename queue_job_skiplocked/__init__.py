from . import flag
from . import models
from . import wizards
from . import controllers
from . import embedded
from .hooks import uninstall_hook
