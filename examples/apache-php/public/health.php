<?php
// The container's health check: Apache and PHP answer (the database is checked by poststack separately).
header('Content-Type: text/plain');
echo "ok\n";
