"""CodeCommit: the project's source repository and its two branches.

Branches: ``main`` holds the pipeline code (mlops_core, bin/, the buildspecs' commands) that the
Preprocess, Train, Evaluate and Deploy actions run; ``model`` holds the model code (model_container/ and
its Dockerfile) that the ContainerBuild action builds. ``seed_branches`` creates both on an empty
repository with a README saying so (moto has no commit APIs; it is tested with botocore's Stubber).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, error_code, resolve
from mlops_core.ensure import Action, Ensured, describe_or_none, result

KIND = "codecommit repository"
BRANCH_MISSING = ("BranchDoesNotExistException",)


def readme(repository: str, code_branch: str = "main", model_branch: str = "model") -> str:
    return (f"# {repository}\n\nBranches:\n\n"
            f"- `{code_branch}`: pipeline code (mlops_core, bin/) run by the Preprocess, Train, Evaluate and "
            "Deploy actions.\n"
            f"- `{model_branch}`: model code (model_container/ and its Dockerfile) built by the ContainerBuild "
            "action.\n\nA push to either branch starts a release.\n")


def get_repository(name: str, *, clients: Clients | None = None) -> dict | None:
    """The repository's metadata, or None when it does not exist."""
    found = describe_or_none(resolve(clients).codecommit.get_repository, repositoryName=name)
    return found["repositoryMetadata"] if found else None


def ensure_repository(name: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                      dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create the repository or update its description; details carry the clone URLs."""
    codecommit = resolve(clients).codecommit
    current = get_repository(name, clients=clients)
    changes: list[str] = []
    created = current is None
    if current is None:
        if not dry_run:
            current = codecommit.create_repository(repositoryName=name, repositoryDescription=description,
                                                   tags=dict(tags or {}))["repositoryMetadata"]
    elif (current.get("repositoryDescription") or "") != description:
        changes.append("description")
        if not dry_run:
            codecommit.update_repository_description(repositoryName=name, repositoryDescription=description)
    metadata = current or {}
    return result(KIND, name, created=created, changes=changes, arn=metadata.get("Arn"), dry_run=dry_run,
                  clone_url_http=metadata.get("cloneUrlHttp"), clone_url_ssh=metadata.get("cloneUrlSsh"))


def _branch_commit(codecommit, repository: str, branch: str) -> str | None:
    try:
        return codecommit.get_branch(repositoryName=repository, branchName=branch)["branch"]["commitId"]
    except ClientError as exc:
        if error_code(exc) in BRANCH_MISSING:
            return None
        raise


def seed_branches(repository: str, branches: Sequence[str], files: Mapping[str, str], *,
                  dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Make sure ``branches`` exist: the first gets an initial commit of ``files`` when missing, the
    others branch from it. Existing branches are left alone."""
    codecommit = resolve(clients).codecommit
    first, *others = branches
    created: list[str] = []
    commit = _branch_commit(codecommit, repository, first)
    if commit is None:
        created.append(first)
        if not dry_run:
            commit = codecommit.create_commit(
                repositoryName=repository, branchName=first, commitMessage="Initial commit: branch layout",
                putFiles=[{"filePath": path, "fileContent": content.encode()} for path, content in files.items()],
            )["commitId"]
    for branch in others:
        if _branch_commit(codecommit, repository, branch) is None:
            created.append(branch)
            if not dry_run:
                codecommit.create_branch(repositoryName=repository, branchName=branch, commitId=commit)
    return Ensured(Action.UPDATED if created else Action.UNCHANGED, "codecommit branches",
                   f"{repository}:{','.join(branches)}",
                   details={"created": created, **({"dry_run": True} if dry_run else {})})


def delete_repository(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the repository; ABSENT when it is already gone (DeleteRepository then returns no id)."""
    answer = resolve(clients).codecommit.delete_repository(repositoryName=name)
    return Ensured(Action.DELETED if answer.get("repositoryId") else Action.ABSENT, KIND, name)
