"""`blueprints image-recipe`: a role's package phase as a script, and the steps to a gallery image.

The analytics VMs can boot from a prebuilt image (roles.analytics.image) instead of installing
their packages at first boot. This command prints what that image must hold, from the stack's own
rendered cloud-init (blueprints/image_recipe.py), and with --az-steps the Azure CLI steps that
build and capture it.
"""

from __future__ import annotations

import argparse
import sys

from validation.usage import DEFAULT_STACK, EXIT_OK, UsageError

IMAGE_ROLES = ("analytics",)  # the roles whose settings can name a prebuilt image


def _cmd_image_recipe(args: argparse.Namespace) -> int:
    from blueprints.image_recipe import ImageRecipeError, az_steps, image_recipe, install_script
    from validation.stack_config import load_stack

    config = load_stack(args.stack_file)
    try:
        recipe = image_recipe(config, args.role)
    except ImageRecipeError as error:
        raise UsageError(f"{args.stack_file}: --role {args.role}: {error}") from None
    if args.az_steps:
        sys.stdout.write(az_steps(recipe))
    else:
        sys.stdout.write(install_script(recipe))
        print(f"{args.role}: {len(recipe.phase.packages)} packages, package phase {recipe.phase.digest()}; "
              "save this as analytics-packages.sh, then see --az-steps", file=sys.stderr)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    command = commands.add_parser(
        "image-recipe", help="what a role's prebuilt gallery image holds, and how to build it",
        description="Print the package phase of a role's rendered cloud-init as a shell script for a VM "
                    "from Debian 13's Marketplace image; with --az-steps, the Azure CLI steps that run it "
                    "and capture an Azure Compute Gallery image version (roles.analytics.image).")
    command.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                         help=f"stack file to read (default: {DEFAULT_STACK})")
    command.add_argument("--role", choices=IMAGE_ROLES, default="analytics", help="the role (default: analytics)")
    command.add_argument("--az-steps", action="store_true", help="print the Azure CLI steps instead of the script")
    command.set_defaults(handler=_cmd_image_recipe)
