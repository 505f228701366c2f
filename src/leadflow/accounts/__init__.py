"""The admin console's member management: invitations, deactivation with lead handover, bulk
actions and impersonation (`/api/v1/admin/users…`, `/api/v1/auth/accept-invite`)."""
