<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** The appid was never registered (the admin's "mini program not configured" case). */
class AppNotConfiguredException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
