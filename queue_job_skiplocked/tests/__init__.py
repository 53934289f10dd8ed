from . import test_skiplocked
from . import test_runjob
from . import test_orm_claim
from . import test_wait
from . import test_job_route
from . import test_runner_views
from . import test_periodic
