-- SPDX-License-Identifier: MIT
-- tests/machines/empty-devices.lua: a machine without devices
return { devices = {} }
