<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\LibraryFinder;
use FaShop\Notify\Status;
use PHPUnit\Framework\TestCase;

/**
 * Notifier::load() without a path: FASHOP_NOTIFY_LIB, the package's lib/, the install
 * locations, in that order, and a miss that names every place. Every place here is a
 * fresh temporary directory, so a library installed on this host changes nothing.
 */
final class LibraryFinderTest extends TestCase
{
    private string $dir;
    /** @var array<string,string|false> */
    private array $savedEnv = [];

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/fashop-notify-finder-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir);
        foreach (['PKG_CONFIG_PATH', 'PKG_CONFIG_LIBDIR', 'PKG_CONFIG_SYSROOT_DIR'] as $name) {
            $this->savedEnv[$name] = getenv($name);
        }
    }

    protected function tearDown(): void
    {
        foreach ($this->savedEnv as $name => $value) {
            putenv($value === false ? $name : "$name=$value");
        }
        exec('rm -rf ' . escapeshellarg($this->dir));
    }

    public function testTheSonameFollowsTheCrateVersion(): void
    {
        $cargo = (string) file_get_contents(dirname(__DIR__, 3) . '/Cargo.toml');
        $this->assertSame(1, preg_match('/^version = "(\d+)\.(\d+)\.(\d+)"/m', $cargo, $m));
        [, $major, $minor, $patch] = $m;
        $abi = $major !== '0' ? $major : ($minor !== '0' ? "0.$minor" : "0.0.$patch");
        $this->assertSame("libfashop_notify.so.$abi", LibraryFinder::SONAME);
    }

    public function testTheEnvironmentVariableComesFirst(): void
    {
        $env = $this->touch('env/libfashop_notify.so');
        $this->touch('pkg/lib/libfashop_notify.so');
        $this->touch('usr/lib/' . LibraryFinder::SONAME);
        $finder = new LibraryFinder($env, "$this->dir/pkg", ["$this->dir/usr/lib"], null);
        $this->assertSame($env, $finder->find());
    }

    public function testAnEnvironmentVariableNamingNoFileFailsInsteadOfLoadingAnotherCopy(): void
    {
        $this->touch('pkg/lib/libfashop_notify.so');
        $missing = "$this->dir/gone/libfashop_notify.so";
        $finder = new LibraryFinder($missing, "$this->dir/pkg", [], null);
        try {
            $finder->find();
            $this->fail('a FASHOP_NOTIFY_LIB naming no file was accepted');
        } catch (InvalidArgumentException $e) {
            $this->assertSame(Status::INVALID_ARGUMENT, $e->getStatus());
            $this->assertStringContainsString("FASHOP_NOTIFY_LIB=$missing is not a file", $e->getMessage());
        }
    }

    public function testAnEmptyEnvironmentVariableCountsAsUnset(): void
    {
        $lib = $this->touch('pkg/lib/libfashop_notify.so');
        $this->assertSame($lib, (new LibraryFinder('', "$this->dir/pkg", [], null))->find());
    }

    public function testThePackagesLibDirectoryComesBeforeTheSystem(): void
    {
        $lib = $this->touch('pkg/lib/libfashop_notify.so');
        $this->touch('usr/lib/' . LibraryFinder::SONAME);
        $this->assertSame($lib, (new LibraryFinder(null, "$this->dir/pkg", ["$this->dir/usr/lib"], null))->find());
    }

    public function testAnInstalledPackageFindsTheLibraryOfItsPrefix(): void
    {
        // `make install PREFIX=$this->dir/opt` lays out the package and the library so.
        $lib = $this->touch('opt/lib/' . LibraryFinder::SONAME);
        $this->touch('opt/lib/' . LibraryFinder::LINK_NAME);
        $this->touch('usr/lib/' . LibraryFinder::SONAME);
        $package = "$this->dir/opt/share/fashop-notify/php";
        mkdir($package, 0777, true);
        $this->assertSame($lib, (new LibraryFinder(null, $package, ["$this->dir/usr/lib"], null))->find());
    }

    public function testTheLinkNameIsFoundWhenTheSonameIsMissing(): void
    {
        $lib = $this->touch('usr/lib/' . LibraryFinder::LINK_NAME);
        $this->assertSame($lib, (new LibraryFinder(null, "$this->dir/pkg", ["$this->dir/usr/lib"], null))->find());
    }

    public function testPkgConfigsLibdirComesBeforeTheSystemDirectories(): void
    {
        $lib = $this->touch('custom/lib64/' . LibraryFinder::SONAME);
        $this->touch('usr/lib/' . LibraryFinder::SONAME);
        $this->pkgConfigKnows("$this->dir/custom");
        $this->assertSame($lib, (new LibraryFinder(null, "$this->dir/pkg", ["$this->dir/usr/lib"]))->find());
    }

    public function testNothingFoundNamesEveryPlaceLookedAt(): void
    {
        $this->pkgConfigKnows(null);
        $package = "$this->dir/opt/share/fashop-notify/php";
        $system = ["$this->dir/usr/local/lib", "$this->dir/usr/lib"];
        $message = $this->miss(new LibraryFinder(null, $package, $system));
        $expected = ['FASHOP_NOTIFY_LIB (not set)'];
        foreach (["$package/lib", $package, "$this->dir/opt/lib", 'pkg-config', ...$system] as $dir) {
            if ($dir === 'pkg-config') {
                $expected[] = 'pkg-config fashop_notify (pkg-config knows no fashop_notify.pc)';
                continue;
            }
            $expected[] = "$dir/" . LibraryFinder::SONAME;
            $expected[] = "$dir/" . LibraryFinder::LINK_NAME;
        }
        $this->assertSame($expected, $this->looked($message));
        $this->assertStringEndsWith('; pass its path to Notifier::load(), set FASHOP_NOTIFY_LIB, '
            . 'or install it (`make install`, or the release tarball)', $message);
    }

    public function testAMissingPkgConfigIsNamedInTheMessage(): void
    {
        $message = $this->miss(new LibraryFinder(null, "$this->dir/pkg", ["$this->dir/usr/lib"], "$this->dir/no/pkg-config"));
        $looked = $this->looked($message);
        $this->assertCount(8, $looked);
        $this->assertSame("pkg-config fashop_notify ($this->dir/no/pkg-config is not installed)", $looked[5]);
        $this->assertSame("$this->dir/usr/lib/" . LibraryFinder::LINK_NAME, $looked[7]);
    }

    public function testTheDefaultSystemDirectoriesAreTheUsualOnes(): void
    {
        $dirs = LibraryFinder::defaultSystemDirs();
        $this->assertSame('/usr/local/lib', $dirs[0]);
        $this->assertContains('/usr/lib/' . php_uname('m') . '-linux-gnu', $dirs);
        $this->assertSame('/usr/lib', $dirs[count($dirs) - 1]);
    }

    private function miss(LibraryFinder $finder): string
    {
        try {
            $finder->find();
        } catch (InvalidArgumentException $e) {
            $this->assertSame(Status::INVALID_ARGUMENT, $e->getStatus());
            return $e->getMessage();
        }
        $this->fail('a library was found where none is');
    }

    /** @return list<string> the places the message says were looked at */
    private function looked(string $message): array
    {
        $this->assertSame(1, preg_match('/^libfashop_notify not found; looked at: (.*?); pass its path/', $message, $m), $message);
        return explode(', ', $m[1]);
    }

    /** pkg-config, searching only a directory of ours, knows fashop_notify with this prefix (null: not at all). */
    private function pkgConfigKnows(?string $prefix): void
    {
        $this->assertNotNull(self::which('pkg-config'), 'pkg-config is missing: run `make deps`');
        $pc = "$this->dir/pkgconfig";
        mkdir($pc);
        if ($prefix !== null) {
            file_put_contents("$pc/fashop_notify.pc", "prefix=$prefix\nlibdir=\${prefix}/lib64\n\n"
                . "Name: fashop_notify\nDescription: test\nVersion: 0.1.0\nLibs: -L\${libdir} -lfashop_notify\n");
        }
        putenv("PKG_CONFIG_LIBDIR=$pc");
        putenv('PKG_CONFIG_PATH');
        putenv('PKG_CONFIG_SYSROOT_DIR');
    }

    private static function which(string $command): ?string
    {
        foreach (explode(PATH_SEPARATOR, (string) getenv('PATH')) as $dir) {
            if ($dir !== '' && is_executable("$dir/$command")) {
                return "$dir/$command";
            }
        }
        return null;
    }

    private function touch(string $relative): string
    {
        $file = "$this->dir/$relative";
        if (!is_dir(dirname($file))) {
            mkdir(dirname($file), 0777, true);
        }
        touch($file);
        return $file;
    }
}
