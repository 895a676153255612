"""This project's CI/CD plan, in one place: every name derived from one project name (``names``), the
buildspecs (``buildspecs``), the release pipeline (``pipeline``), the roles' policies (``policies``), one
release's S3 layout and job specs (``release``), and bootstrap / teardown in dependency order (``bootstrap``).

It composes the generic service modules (``mlops_core.s3``, ``iam``, ``codebuild``, ...), which know nothing
of it.
"""

from mlops_core.project.bootstrap import (
    add_project_arguments,
    bootstrap,
    describe_results,
    project_config,
    project_from_args,
    teardown,
)
from mlops_core.project.names import ALL_TASKS, BUILD_STAGES, ROLE_KINDS, TASKS, Project

__all__ = ["ALL_TASKS", "BUILD_STAGES", "ROLE_KINDS", "TASKS", "Project", "add_project_arguments", "bootstrap",
           "describe_results", "project_config", "project_from_args", "teardown"]
