"""nbgrader settings for the learners' servers on a JupyterHub (installed into the course environment's
etc/jupyter/ by classroom/install-environment.sh, so every learner's server and kernel reads it).

The whole workbook is one nbgrader assignment, ``notebooks``: the notebooks/ folder of the copy nbgitpuller
put in each learner's home, ~/training-neural-networks-2/notebooks/. A learner submits it from JupyterLab's
Assignments tab (or ``nbgrader submit notebooks`` in a terminal); the instructor collects every submission with
``make classroom-collect`` and grades it with ``make grade`` (see classroom/README.md).
"""

import os

c = get_config()  # noqa: F821  (nbgrader injects get_config)

# The same course id as instructor/nbgrader_config.py.
c.CourseDirectory.course_id = "training-neural-networks-2"

# The exchange: one folder on the server (a shared volume on Kubernetes) that every learner can write to.
c.Exchange.root = os.environ.get("CLASSROOM_EXCHANGE", "/srv/nbgrader/exchange")

# Where the assignment folder ("notebooks") lives: the folder the nbgitpuller link pulls the workbook into.
# Absolute, because nbgrader's Assignments tab resolves a relative one from two different directories.
c.Exchange.assignment_dir = os.path.join(os.path.expanduser("~"), "training-neural-networks-2")

# Name every submission after the learner's hub user name. Without this nbgrader names it after the Unix
# user, and where learners share one (a Docker or Kubernetes image runs everybody as jovyan), every
# submission is collected as the same student and each overwrites the one before.
if os.environ.get("JUPYTERHUB_USER"):
    c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
