//! Running a team through the API: invitations, who may do what, deleting users, an admin's
//! reset of a user's 2FA, and the account's audit log.

mod invitations;
mod races;
mod users;
