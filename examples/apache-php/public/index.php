<?php
// Seed 003's connection, reading the environment that mod_env passes on (PassEnv). getenv(), not $_ENV: Debian's
// php.ini has variables_order "GPCS", so $_ENV is empty, and under mod_php the variables are Apache's, not the
// process's.
$host = getenv('DB_HOST') ?: 'localhost';
$port = getenv('DB_PORT') ?: '5432';
$dbname = getenv('DB_NAME') ?: 'poststack';
$user = getenv('DB_USER') ?: 'poststack';
$password = getenv('DB_PASS') ?: '';

header('Content-Type: text/plain; charset=utf-8');
try {
    $pdo = new PDO("pgsql:host=$host;port=$port;dbname=$dbname", $user, $password,
                   [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    foreach ($pdo->query('SELECT message FROM greetings ORDER BY id') as $row) {
        echo $row['message'], "\n";
    }
} catch (PDOException $e) {
    http_response_code(503);
    // The reason without the connection string (PDO's messages do not quote the password).
    echo "database unavailable: ", $e->getMessage(), "\n";
}
