-- SPDX-License-Identifier: MIT
-- tests/machines/wrong-type-devices.lua: devices given as a string
return { devices = "all of them" }
