"""An Entra ID app registration for an OpenID Connect web sign-in: the application, its service
principal (without which nobody in the tenant can sign in to it), and one client secret that expires.

Created with pulumi-azuread, which talks to Microsoft Graph, not Azure Resource Manager: the
identity running `pulumi up` needs the Application Administrator role (or
Application.ReadWrite.OwnedBy) in the tenant, which is why a stack asks for this explicitly.
Entra ID charges nothing for app registrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_azuread as azuread

# The longest client secret Entra ID's portal offers; a longer one is a secret nobody diarises.
MAX_SECRET_DAYS = 730


@dataclass
class EntraApplicationArgs:
    display_name: str
    redirect_uris: Sequence[str]  # the web platform's redirect URIs (the authorisation code flow)
    secret_days: int  # the client secret expires this many days after it is created
    notes: str = ""  # shown to directory administrators: who made the registration and why
    tags: dict[str, str] = field(default_factory=dict)  # Entra ID tags are plain strings: "key=value"


class EntraApplication(pulumi.ComponentResource):
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]  # a Pulumi secret
    secret_expires: pulumi.Output[str]  # RFC 3339, as Entra ID reports it

    def __init__(self, name: str, args: EntraApplicationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:EntraApplication", name, None, opts)
        if not 1 <= args.secret_days <= MAX_SECRET_DAYS:
            raise ValueError(f"secret_days {args.secret_days} is outside 1-{MAX_SECRET_DAYS}")
        child = pulumi.ResourceOptions(parent=self)
        app = azuread.Application(
            f"{name}-app",
            display_name=args.display_name,
            sign_in_audience="AzureADMyOrg",  # this tenant's accounts only
            # The code flow only: no tokens straight from the authorise endpoint.
            web={"redirect_uris": list(args.redirect_uris),
                 "implicit_grant": {"access_token_issuance_enabled": False, "id_token_issuance_enabled": False}},
            # The groups claim carries security groups' object ids, in the ID token the gateway reads.
            group_membership_claims=["SecurityGroup"],
            optional_claims={"id_tokens": [{"name": "groups"}]},
            notes=args.notes or None,
            tags=[f"{key}={value}" for key, value in sorted(args.tags.items())],
            opts=child,
        )
        azuread.ServicePrincipal(f"{name}-principal", client_id=app.client_id, opts=child)
        # end_date_relative is fixed when the secret is made: later runs keep it, so the secret is
        # replaced only when the stack's expiry setting changes (or the secret is tainted to rotate it).
        password = azuread.ApplicationPassword(
            f"{name}-secret",
            application_id=app.id,
            display_name=f"{args.display_name} (Pulumi)",
            end_date_relative=f"{args.secret_days * 24}h",
            opts=child,
        )
        self.client_id = app.client_id
        self.client_secret = pulumi.Output.secret(password.value)
        self.secret_expires = password.end_date
        self.register_outputs({"client_id": self.client_id, "secret_expires": self.secret_expires})
