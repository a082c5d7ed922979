<?php
declare(strict_types=1);

namespace FaShop\Notify;

/**
 * Where `Notifier::load()` finds libfashop_notify when given no path: FASHOP_NOTIFY_LIB,
 * then this package's own lib/ directory, then where `make install` and the release
 * tarball put a C library. A miss names every place looked at.
 */
final class LibraryFinder
{
    /**
     * The library's ABI name (its SONAME, cargo-c's rule: `.so.0.MINOR` before 1.0),
     * the one this package's header declares; tests check it against Cargo.toml.
     */
    public const SONAME = 'libfashop_notify.so.0.1';

    /** The development link `make install` also makes, and the name of a library copied by hand. */
    public const LINK_NAME = 'libfashop_notify.so';

    /** Where the package sits under an install prefix: PREFIX/share/fashop-notify/php. */
    private const INSTALLED_PACKAGE_DIR = '/share/fashop-notify/php';

    /**
     * @param string|null $envPath the value of FASHOP_NOTIFY_LIB (null or '' when unset)
     * @param string $packageDir this package's directory (bindings/php, or PREFIX/share/fashop-notify/php)
     * @param list<string> $systemDirs the library directories of the system, most specific first
     * @param string|null $pkgConfig the pkg-config command asked for fashop_notify's libdir; null: not asked
     */
    public function __construct(
        private ?string $envPath,
        private string $packageDir,
        private array $systemDirs,
        private ?string $pkgConfig = 'pkg-config',
    ) {
    }

    /** The finder for this process: its environment, this package, the usual library directories. */
    public static function forThisHost(): self
    {
        $env = getenv('FASHOP_NOTIFY_LIB');
        return new self(is_string($env) ? $env : null, dirname(__DIR__), self::defaultSystemDirs());
    }

    /**
     * /usr/local/lib, the multiarch directory (/usr/lib/x86_64-linux-gnu), /usr/lib64, /usr/lib.
     *
     * @return list<string>
     */
    public static function defaultSystemDirs(): array
    {
        $machine = php_uname('m');
        $dirs = ['/usr/local/lib'];
        if ($machine !== '') {
            $dirs[] = '/usr/lib/' . $machine . '-linux-gnu';
        }
        $dirs[] = '/usr/lib64';
        $dirs[] = '/usr/lib';
        return $dirs;
    }

    /**
     * The library's path. A FASHOP_NOTIFY_LIB that names no file is an error (a
     * setting gone stale must not load another copy from elsewhere).
     *
     * @throws Exception\InvalidArgumentException when no place has it
     */
    public function find(): string
    {
        if ($this->envPath !== null && $this->envPath !== '') {
            if (is_file($this->envPath)) {
                return $this->envPath;
            }
            throw Exception\InvalidArgumentException::fromStatus(
                Status::INVALID_ARGUMENT,
                "libfashop_notify not found: FASHOP_NOTIFY_LIB={$this->envPath} is not a file "
                . '(fix or unset it; unset, the package looks in its lib/ directory and the install locations)'
            );
        }
        $looked = ['FASHOP_NOTIFY_LIB (not set)'];
        foreach ($this->places() as $place) {
            if (!is_array($place)) {
                $looked[] = $place; // what pkg-config answered instead of a libdir
                continue;
            }
            foreach ([self::SONAME, self::LINK_NAME] as $name) {
                $file = $place[0] . '/' . $name;
                if (is_file($file)) {
                    return $file;
                }
                $looked[] = $file;
            }
        }
        throw Exception\InvalidArgumentException::fromStatus(
            Status::INVALID_ARGUMENT,
            'libfashop_notify not found; looked at: ' . implode(', ', $looked)
            . '; pass its path to Notifier::load(), set FASHOP_NOTIFY_LIB, or install it (`make install`, or the release tarball)'
        );
    }

    /**
     * The directories searched, in order, without repeats: the package's lib/ and
     * its own directory, the lib/ of the prefix it is installed under, pkg-config's
     * libdir (or, in its place, why there is none), the system's.
     *
     * @return list<array{0: string}|string> a directory, or a note on pkg-config
     */
    private function places(): array
    {
        $dirs = [$this->packageDir . '/lib', $this->packageDir];
        if (str_ends_with($this->packageDir, self::INSTALLED_PACKAGE_DIR)) {
            $dirs[] = substr($this->packageDir, 0, -strlen(self::INSTALLED_PACKAGE_DIR)) . '/lib';
        }
        $note = null;
        if ($this->pkgConfig !== null) {
            [$libdir, $why] = $this->pkgConfigLibdir($this->pkgConfig);
            if ($libdir !== null) {
                $dirs[] = $libdir;
            } else {
                $note = "pkg-config fashop_notify ($why)";
            }
        }
        $places = [];
        foreach (array_unique($dirs) as $dir) {
            $places[] = [$dir];
        }
        if ($note !== null) {
            $places[] = $note;
        }
        foreach (array_diff(array_unique($this->systemDirs), $dirs) as $dir) {
            $places[] = [$dir];
        }
        return $places;
    }

    /**
     * `pkg-config --variable=libdir fashop_notify`, run without a shell.
     *
     * @return array{0: ?string, 1: string} the libdir, or null and why there is none
     */
    private function pkgConfigLibdir(string $command): array
    {
        if (!function_exists('proc_open')) {
            return [null, 'not run: proc_open is disabled'];
        }
        $binary = str_contains($command, '/') ? $command : self::inPath($command);
        if ($binary === null || !is_executable($binary)) {
            return [null, "$command is not installed"];
        }
        $pipes = [];
        $proc = @proc_open([$binary, '--variable=libdir', 'fashop_notify'], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        if (!is_resource($proc)) {
            return [null, "$command did not start"];
        }
        $out = (string) stream_get_contents($pipes[1]);
        stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $status = proc_close($proc);
        $libdir = rtrim(trim($out), '/');
        if ($status !== 0 || $libdir === '') {
            return [null, "$command knows no fashop_notify.pc"];
        }
        return [$libdir, ''];
    }

    private static function inPath(string $command): ?string
    {
        foreach (explode(PATH_SEPARATOR, (string) getenv('PATH')) as $dir) {
            if ($dir !== '' && is_executable($dir . '/' . $command)) {
                return $dir . '/' . $command;
            }
        }
        return null;
    }
}
