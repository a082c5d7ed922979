<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Exception\NotifyException;
use FaShop\Notify\Notifier;
use FaShop\Notify\Status;
use PHPUnit\Framework\TestCase;

/** The library loads through FFI::cdef with the flattened header, and the basics work. */
final class SmokeTest extends TestCase
{
    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
    }

    public function testVersionIsTheCrateVersion(): void
    {
        $cargo = (string) file_get_contents(dirname(__DIR__, 3) . '/Cargo.toml');
        preg_match('/^version = "([^"]+)"/m', $cargo, $m);
        $this->assertSame($m[1], $this->n->version());
    }

    public function testStatusConstantsEqualTheHeaderEnum(): void
    {
        $header = (string) file_get_contents(dirname(__DIR__, 3) . '/include/fashop_notify.h');
        preg_match_all('/^\s*FASHOP_NOTIFY_([A-Z_]+) = (\d+),/m', $header, $m, PREG_SET_ORDER);
        $fromHeader = [];
        foreach ($m as [, $name, $value]) {
            $fromHeader[$name] = (int) $value;
        }
        $this->assertCount(10, $fromHeader);
        $this->assertSame($fromHeader, Status::all());
    }

    public function testRegisterListUnregister(): void
    {
        $this->n->registerApp(['appid' => 'wxphpsmoke000001', 'secret' => 'php-smoke-secret', 'api_base' => Sandbox::url()]);
        $this->n->registerApp(['appid' => 'wxphpsmoke000001', 'secret' => 'php-smoke-secret', 'api_base' => Sandbox::url()]);
        $apps = array_column($this->n->listApps(), null, 'appid');
        $this->assertArrayHasKey('wxphpsmoke000001', $apps);
        $this->assertSame('stable', $apps['wxphpsmoke000001']['token_mode']);
        $this->assertStringNotContainsString('php-smoke-secret', json_encode($apps, JSON_THROW_ON_ERROR));
        $this->n->unregisterApp('wxphpsmoke000001');
        $this->expectException(AppNotConfiguredException::class);
        $this->n->unregisterApp('wxphpsmoke000001');
    }

    public function testBadInputThrowsWithTheLibrarysMessage(): void
    {
        try {
            $this->n->registerApp(['appid' => 'wx1', 'secrett' => 'x']);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertInstanceOf(NotifyException::class, $e);
            $this->assertInstanceOf(\InvalidArgumentException::class, $e);
            $this->assertSame(Status::INVALID_ARGUMENT, $e->getStatus());
            $this->assertStringContainsString('unknown field `secrett`', $e->getMessage());
        }
        foreach (["wx\xff\xfe", "wx\0evil", ''] as $bad) {
            try {
                $this->n->unregisterApp($bad);
                $this->fail('no exception for ' . bin2hex($bad));
            } catch (InvalidArgumentException $e) {
                $this->assertNotSame('', $e->getMessage());
            }
        }
        // Settings that worked first, so that the failed configure below keeps
        // them for the tests after this one in the process.
        $this->n->configure(['max_retries' => 2]);
        $this->expectException(InvalidArgumentException::class);
        $this->expectExceptionMessage('max_retries');
        $this->n->configure(['max_retries' => 'three']);
    }
}
