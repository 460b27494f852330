"""Staff accounts: who may draft, approve and administer, their sessions and the audit trail."""
