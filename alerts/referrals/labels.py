"""The specialities of the directory as readers see them: msgids, translated when shown."""

from __future__ import annotations

from alerts.templating import N_, gettext

SPECIALITY_LABELS = {
    "incident-response": N_("Incident response"),
    "ransomware-recovery": N_("Recovery after ransomware"),
    "security-audit": N_("Security audit and maturity scan"),
    "awareness-training": N_("Awareness training"),
    "managed-security": N_("Managed security services"),
    "web-cms-security": N_("Website and CMS security"),
    "network-firewall": N_("Network and firewall"),
    "backup-recovery": N_("Backup and recovery"),
}


def speciality_label(code: str, language: str) -> str:
    """The speciality in the reader's language; an unknown code as it is."""
    text = SPECIALITY_LABELS.get(code)
    return gettext(language, text) if text else code
