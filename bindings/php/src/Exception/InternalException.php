<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** A bug in the library (a caught panic); please report it. */
class InternalException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
