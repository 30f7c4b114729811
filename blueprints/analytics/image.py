"""roles.analytics.image: boot the analytics VMs from a prebuilt Azure Compute Gallery image.

Without it (the default) an analytics VM starts from Debian's own Debian 13 image in the
Marketplace and its first boot installs about a thousand Debian packages. With it, the VM starts
from a gallery image that already holds exactly those packages: an image built from the role's
package phase (``blueprints image-recipe``, blueprints/image_recipe.py). The rendered cloud-init
is the same bytes either way; its package step finds everything installed and moves on.

An image is fixed when a VM is created: pointing the stack at a new image version replaces the
analytics VMs (their /home data disks are kept; modules/immutable-properties.yaml).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GALLERY_IMAGE_VERSION_ALLOWED", "GALLERY_IMAGE_VERSION_PATTERN", "IMAGE_SCHEMA", "gallery_image_version_id"]

# The id `az sig image-version show --query id` prints. Names as Azure allows them: a gallery has
# letters, digits, '.' and '_' (not first or last); an image definition letters, digits, '.', '_'
# and '-'; a version is MAJOR.MINOR.PATCH. A version, never a definition alone: a definition would
# follow whatever was published last, and a VM could then change image without a stack edit.
GALLERY_IMAGE_VERSION_PATTERN = (
    r"^/subscriptions/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"/resourceGroups/[-\w.()]{0,89}[-\w()]"
    r"/providers/Microsoft\.Compute/galleries/[A-Za-z0-9](?:[A-Za-z0-9._]{0,78}[A-Za-z0-9])?"
    r"/images/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9])?"
    r"/versions/[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}$"
)
GALLERY_IMAGE_VERSION_ALLOWED = (
    "an Azure Compute Gallery image version id: /subscriptions/<subscription id>/resourceGroups/<group>"
    "/providers/Microsoft.Compute/galleries/<gallery>/images/<image definition>/versions/<major.minor.patch>"
)

IMAGE_SCHEMA: dict[str, Any] = {
    "type": "dict", "required": False,
    "meta": {"doc": "Boot the analytics VMs from a prebuilt gallery image holding their packages (default: "
                    "Debian 13 from the Marketplace, packages installed at first boot); see "
                    "`blueprints image-recipe`"},
    "schema": {
        "gallery_image_version_id": {
            "type": "string", "required": True, "regex": GALLERY_IMAGE_VERSION_PATTERN,
            "meta": {"doc": "The image version's Azure id (a Trusted Launch, generation 2 image definition)",
                     "allowed": GALLERY_IMAGE_VERSION_ALLOWED},
        },
    },
}


def gallery_image_version_id(config: dict[str, Any]) -> str | None:
    """The gallery image the stack's analytics VMs boot from, or None for Debian's Marketplace image."""
    image = (config["roles"].get("analytics") or {}).get("image")
    return image["gallery_image_version_id"] if image else None
