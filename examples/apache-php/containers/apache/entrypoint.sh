#!/bin/bash
set -e

# Substitute environment variables in the configuration templates: only the names listed, so that nothing else
# of the environment (the database password) ends up in a file.
export SERVER_NAME="${SERVER_NAME:-localhost}"
# Debian's mod_php for its PHP version (libphp8.2.so on Debian 12, libphp8.4.so on 13).
PHP_MODULE="$(ls /usr/lib/apache2/modules/libphp*.so)"
export PHP_MODULE
# shellcheck disable=SC2016
envsubst '${SERVER_NAME} ${PHP_MODULE}' < /etc/apache2/apache2.conf.template > /etc/apache2/apache2.conf
# shellcheck disable=SC2016
envsubst '${SERVER_NAME}' < /etc/apache2/sites-available/unified.conf.template > /etc/apache2/sites-available/unified.conf

# Enable the site
a2ensite -q unified

# Execute the main command
exec "$@"
