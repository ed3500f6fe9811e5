-- A device's enrolment windows are looked up when its state is loaded (every cache miss of
-- a boot storm): by its MAC, and the account-wide ones (mac NULL), without reading every
-- window of the account — an import opens one window per device until it enrols.
CREATE INDEX enrolment_windows_mac ON enrolment_windows (mac, closes_at);
