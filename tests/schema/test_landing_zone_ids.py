"""Landing-zone mode (network.landing_zone): every missing or malformed id, and every stack the mode cannot
deploy, is refused through `blueprints validate` with the field, the value and what is allowed, exit code 2."""

from __future__ import annotations

import pytest

from cli.main import main
from tests.conftest import REPO

STACK = REPO / "stacks" / "landing-zone.yaml"
TEXT = STACK.read_text()
SPOKE = ("/subscriptions/00000000-0000-4000-8000-00000000000a/resourceGroups/rg-spoke-analytics-uksouth/providers/"
         "Microsoft.Network/virtualNetworks/vnet-spoke-analytics-uksouth")
HUB = ("/subscriptions/00000000-0000-4000-8000-00000000000b/resourceGroups/rg-hub-connectivity-uksouth/providers/"
       "Microsoft.Network/virtualNetworks/vnet-hub-uksouth")
VAULT_ZONE = ("/subscriptions/00000000-0000-4000-8000-00000000000b/resourceGroups/rg-hub-dns/providers/"
              "Microsoft.Network/privateDnsZones/privatelink.vaultcore.azure.net")
WORKSPACE = ("/subscriptions/00000000-0000-4000-8000-00000000000c/resourceGroups/rg-management-uksouth/providers/"
             "Microsoft.OperationalInsights/workspaces/log-central-uksouth")
FIELD = "network.landing_zone."

# (case, the field the message names, words of what is allowed, (old, new) edits of the worked stack)
CASES = [
    ("spoke-id-not-an-id", FIELD + "spoke_virtual_network_id", "a virtual network's resource id",
     ((SPOKE, "vnet-spoke-analytics-uksouth"),)),
    ("spoke-id-of-a-subnet", FIELD + "spoke_virtual_network_id", "Microsoft.Network/virtualNetworks/<name>",
     ((SPOKE, SPOKE + "/subnets/snet-services"),)),
    ("spoke-id-bad-subscription", FIELD + "spoke_virtual_network_id", "<subscription GUID>",
     ((SPOKE, SPOKE.replace("00000000-0000-4000-8000-00000000000a", "spoke-subscription")),)),
    ("hub-id-wrong-type", FIELD + "hub_virtual_network_id", "Microsoft.Network/virtualNetworks/<name>",
     ((HUB, HUB.replace("virtualNetworks", "azureFirewalls")),)),
    ("hub-is-the-spoke", FIELD + "hub_virtual_network_id", "is the spoke itself", ((HUB, SPOKE),)),
    ("zone-id-of-another-zone", FIELD + "private_dns_zone_ids.privatelink.vaultcore.azure.net",
     "privateDnsZones/privatelink.vaultcore.azure.net",
     ((VAULT_ZONE, VAULT_ZONE.replace("vaultcore.azure.net", "blob.core.windows.net")),)),
    ("zone-missing", FIELD + "private_dns_zone_ids.privatelink.vaultcore.azure.net", "is required",
     ((f"      privatelink.vaultcore.azure.net: {VAULT_ZONE}\n", ""),)),
    ("zone-unknown", FIELD + "private_dns_zone_ids.privatelink.file.core.windows.net", "is not a known setting",
     ((f"      privatelink.vaultcore.azure.net: {VAULT_ZONE}\n",
       f"      privatelink.vaultcore.azure.net: {VAULT_ZONE}\n      privatelink.file.core.windows.net: x\n"),)),
    ("workspace-id-truncated", FIELD + "log_analytics_workspace_id", "a Log Analytics workspace's resource id",
     ((WORKSPACE, WORKSPACE.rsplit("/", 1)[0]),)),
    ("workspace-missing", FIELD + "log_analytics_workspace_id", "is required",
     ((f"    log_analytics_workspace_id: {WORKSPACE}\n", ""),)),
    ("firewall-not-an-address", FIELD + "hub_firewall_address", "a private IPv4 address",
     (("hub_firewall_address: 10.88.0.4", "hub_firewall_address: azfw-hub"),)),
    ("firewall-octet-out-of-range", FIELD + "hub_firewall_address", "each part 0-255",
     (("hub_firewall_address: 10.88.0.4", "hub_firewall_address: 10.88.0.400"),)),
    ("firewall-public", FIELD + "hub_firewall_address", "the firewall's private address in the hub",
     (("hub_firewall_address: 10.88.0.4", "hub_firewall_address: 20.50.1.4"),)),
    ("firewall-inside-the-spoke", FIELD + "hub_firewall_address", "lies inside the spoke's network.address_space",
     (("hub_firewall_address: 10.88.0.4", "hub_firewall_address: 10.88.4.100"),)),
    ("bastion-range-not-a-range", FIELD + "hub_bastion_range", "a private IPv4 range outside network.address_space",
     (("hub_bastion_range: 10.88.0.64/26", "hub_bastion_range: bastion-subnet"),)),
    ("bastion-range-host-bits", FIELD + "hub_bastion_range", "no host bits set",
     (("hub_bastion_range: 10.88.0.64/26", "hub_bastion_range: 10.88.0.65/26"),)),
    ("bastion-range-public", FIELD + "hub_bastion_range", "the hub's private AzureBastionSubnet range",
     (("hub_bastion_range: 10.88.0.64/26", "hub_bastion_range: 20.50.1.0/26"),)),
    ("bastion-range-inside-the-spoke", FIELD + "hub_bastion_range", "overlaps the spoke's network.address_space",
     (("hub_bastion_range: 10.88.0.64/26", "hub_bastion_range: 10.88.4.192/26"),)),
    ("hub-gateways-for-an-existing-spoke", FIELD + "use_hub_gateways",
     "applies only to a spoke this program creates, and here the spoke is the existing network",
     (("    hub_firewall_address:", "    use_hub_gateways: true\n    hub_firewall_address:"),)),
    ("gateway-needs-a-public-ip", "roles.gateway.kind", "no gateway kind is allowed",
     (("roles:\n", "roles:\n  gateway:\n    kind: bastion\n"),
      ("    services: 10.88.4.0/27", "    services: 10.88.4.0/27\n    bastion: 10.88.4.64/26"),
      ("  private_client_ranges:", "  allowed_client_ranges: [203.0.113.0/24]\n  private_client_ranges:"))),
    ("internet-client-ranges", "network.allowed_client_ranges", "must be empty with network.landing_zone",
     (("  private_client_ranges:", "  allowed_client_ranges: [203.0.113.0/24]\n  private_client_ranges:"),)),
]


def _validate(tmp_path, capsys, name: str, edits) -> tuple[int, str, str]:
    text = TEXT
    for old, new in edits:
        assert old in text, f"{name}: the worked stack no longer contains {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_worked_landing_zone_stack_is_valid(capsys, plan_cache):
    assert main(["validate", str(STACK)]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "field", "allowed", "edits"), CASES, ids=[case[0] for case in CASES])
def test_a_bad_landing_zone_is_refused_naming_the_field(tmp_path, capsys, name, field, allowed, edits):
    code, out, err = _validate(tmp_path, capsys, name, edits)
    assert code == 2, out + err
    assert "Traceback" not in err and out == ""
    lines = [line for line in err.splitlines() if f" {field}:" in line or line.startswith(f"{field}:")]
    assert lines, f"no problem names {field}:\n{err}"
    assert any(allowed in line for line in lines), err


def test_every_bad_id_is_reported_at_once(tmp_path, capsys):
    edits = [edit for case in CASES if case[0] in ("spoke-id-not-an-id", "hub-id-wrong-type",
                                                     "zone-id-of-another-zone", "workspace-id-truncated")
             for edit in case[3]]
    code, _, err = _validate(tmp_path, capsys, "all-bad", edits)
    assert code == 2
    for field in ("spoke_virtual_network_id", "hub_virtual_network_id",
                  "private_dns_zone_ids.privatelink.vaultcore.azure.net", "log_analytics_workspace_id"):
        assert f"{FIELD}{field}:" in err, err


ANALYTICS = (("roles:\n", "roles:\n  analytics:\n    count: 1\n    vm_size: Standard_D4s_v5\n    data_disk_gb: 64\n"
                          "    auto_shutdown: {time: \"19:00\", timezone: GMT Standard Time}\n"),
             ("  subnets:\n", "  subnets:\n    workloads: 10.88.4.128/27\n"))


def test_analytics_vms_in_a_landing_zone_need_the_hubs_bastion_range_and_no_gateway(tmp_path, capsys):
    code, out, err = _validate(tmp_path, capsys, "analytics", ANALYTICS)
    assert code == 0, err
    assert "analytics-1" in out
    without = (("    hub_bastion_range: 10.88.0.64/26", "    # no Bastion range"), *ANALYTICS)
    code, _, err = _validate(tmp_path, capsys, "analytics-no-bastion", without)
    assert code == 2
    assert f"{FIELD}hub_bastion_range: is required by roles.analytics in a landing zone" in err, err
    assert "roles.gateway" not in err, err


def test_a_gateway_is_refused_with_the_hubs_bastion_named_instead(tmp_path, capsys):
    case = next(c for c in CASES if c[0] == "gateway-needs-a-public-ip")
    code, _, err = _validate(tmp_path, capsys, "gateway", case[3])
    assert code == 2
    assert "use the hub's own Azure Bastion instead" in err and f"{FIELD}hub_bastion_range" in err, err


CREATED = REPO / "stacks" / "landing-zone-spoke.yaml"


def test_the_created_spoke_stack_is_valid(capsys):
    assert main(["validate", str(CREATED)]) == 0
    assert "analytics-2" in capsys.readouterr().out


def test_a_created_spoke_names_the_missing_hub_id_and_that_both_forms_need_it(tmp_path, capsys):
    text = CREATED.read_text()
    line = f"    hub_virtual_network_id: {HUB}\n"
    assert line in text
    path = tmp_path / "no-hub.yaml"
    path.write_text(text.replace(line, ""))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{FIELD}hub_virtual_network_id: is required: a virtual network's resource id" in err, err
    assert "both forms need it" in err, err


def test_use_hub_gateways_must_be_true_or_false(tmp_path, capsys):
    path = tmp_path / "gateways.yaml"
    path.write_text(CREATED.read_text().replace("use_hub_gateways: false", "use_hub_gateways: sometimes"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{FIELD}use_hub_gateways:" in err and "sometimes" in err, err
